"""Telegram conventions: menu screens reached from a button are edited in place, commands send
new messages; the bot's description and short description are set in every language at start."""

from __future__ import annotations

from tests.fake_telegram import Event
from tests.kit import Harness, Person
from tests.test_consents import onboarded


def edits(person: Person) -> list[Event]:
    return [e for e in person.last.events if e.kind == "edit"]


def sent(person: Person) -> list[Event]:
    return [e for e in person.last.events if e.kind == "message"]


async def test_menu_screens_are_edited_in_place(bot: Harness) -> None:
    for person, labels in (
        (await onboarded(bot, "Ann"), ("⚖️ My rights", "📋 My requests", "🌐 Language", "← Back")),
        (
            await onboarded(bot, "Борис", "ru"),
            ("⚖️ Мои права", "📋 Мои заявления", "🌐 Язык", "← Назад"),
        ),
    ):
        rights, requests, language, back = labels
        await person.send("/start")
        [menu] = sent(person)
        for label, fragment in ((rights, "🗑"), (requests, ""), (language, "English")):
            await person.tap(label)
            [screen] = edits(person)
            assert screen.message_id == menu.message_id and not sent(person)
            assert fragment in screen.text + str(screen.markup)
            await person.tap(back)  # back to the menu, in the same message
            [again] = edits(person)
            assert again.message_id == menu.message_id and rights in str(again.markup)
        await person.tap(language)
        await person.tap("English")
        [chosen] = edits(person)
        assert chosen.message_id == menu.message_id
        assert "Done: I will speak English." in chosen.text and "⚖️ My rights" in str(chosen.markup)
        await person.send("/requests")  # a command still answers with a new message
        assert sent(person) and not edits(person)


async def test_description_is_set_in_both_languages(bot: Harness) -> None:
    fake = bot.fake
    ru, en = fake.descriptions["ru"], fake.descriptions["en"]
    assert "ООО «ЕВДЕЛИКС»" in ru["description"] and "EVDELIKS" in en["description"]
    assert fake.descriptions[""] == ru  # everyone else reads the default language
    for texts in fake.descriptions.values():
        assert len(texts["description"]) <= 512 and len(texts["short_description"]) <= 120
        assert texts["short_description"]


async def test_back_from_the_first_question_returns_to_the_rights_list_in_place(
    bot: Harness,
) -> None:
    ann = await onboarded(bot, "Ann")
    await ann.send("/rights")
    await ann.tap("✋ Object to processing")
    [question] = sent(ann)
    await ann.tap("← Back")
    [rights] = edits(ann)
    assert rights.message_id == question.message_id and "Your rights" in rights.text
