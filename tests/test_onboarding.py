"""A user's first minutes: language, age gate, notice, menu; in both languages."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from bot.core.clock import FrozenClock
from storage.models import User
from tests.kit import Harness, Person


async def stored_user(bot: Harness, user_id: int) -> User | None:
    async with bot.app.sessions() as session:
        return await session.get(User, user_id)


async def user_count(bot: Harness) -> int:
    async with bot.app.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def test_first_minutes_in_english(bot: Harness, clock: FrozenClock) -> None:
    ann = bot.user("Ann", lang="en", username="ann")
    await ann.send("/start")
    ann.expect("How old are you?")
    ann.expect("/language changes it")

    await ann.tap("16 or older")
    ann.expect("Your answer: 16 or older")
    notice = ann.expect("Privacy notice of EVDELIKS LLC")
    for part in (
        "УНП 193688628",
        "Minsk",
        "Marketing messages (consent)",
        "Account and access to the Service (contract)",
        "Kept:",
        "Who receives it:",
        "Transfer abroad:",
        "Your rights:",
        "National Personal Data Protection Center",
        # The seed gives no version, date or address of the policy: none is invented.
        "Privacy policy: the policy gives no version number or date.",
        "The policy gives no address of its full text; you can ask the operator for it: admin@",
    ):
        assert part in notice.text, part
    assert "gybry.com/privacy" not in notice.text and notice.buttons() == []
    menu = ann.expect("What would you like to do?")
    assert [b["text"] for b in menu.buttons()] == [
        "⚖️ My rights",
        "📋 My requests",
        "✅ My consents",
        "🔒 Privacy notice",
        "🌐 Language",
        "❓ Help",
    ]

    user = await stored_user(bot, ann.id)
    assert user is not None
    assert (user.age_group, user.language, user.username) == ("adult", "en", "ann")
    assert user.age_answered_at == clock.now()
    assert user.notice_version == bot.pack.policy.version
    assert user.notice_version.startswith("by_99z_sports-")  # the pack's content version


async def test_first_minutes_in_russian(bot: Harness) -> None:
    boris = bot.user("Борис", lang="ru")
    await boris.send("/start")
    boris.expect("Сколько вам лет?")
    await boris.tap("16 лет или старше")
    boris.expect("Ваш ответ: 16 лет или старше")
    notice = boris.expect("Уведомление о конфиденциальности ООО «ЕВДЕЛИКС»")
    assert "Маркетинговые сообщения (согласие)" in notice.text
    assert "Национальный центр защиты персональных данных" in notice.text
    boris.expect("Что вы хотите сделать?")


async def test_language_comes_from_telegram(bot: Harness) -> None:
    for code, question in (
        ("be", "Сколько вам лет?"),
        ("uk", "Сколько вам лет?"),
        ("de", "How old are you?"),
        ("en-GB", "How old are you?"),
        (None, "Сколько вам лет?"),  # DEFAULT_LOCALE is ru
    ):
        person = bot.user("P", lang=code)
        await person.send("/start")
        person.expect(question)


async def test_language_switch_at_the_gate_and_later(bot: Harness) -> None:
    ann = bot.user("Ann", lang="en")
    await ann.send("/start")
    await ann.tap("🌐 Русский")
    edited = ann.expect("Сколько вам лет?")
    assert edited.kind == "edit"
    await ann.tap("16 лет или старше")
    ann.expect("Уведомление о конфиденциальности")

    await ann.send("/language")
    await ann.tap("English")
    ann.expect("Done: I will speak English.")
    ann.expect("What would you like to do?")
    user = await stored_user(bot, ann.id)
    assert user is not None and user.language == "en"

    await ann.send("/language")
    await ann.tap("English")  # the same language again: harmless, no error
    ann.expect("What would you like to do?")


async def test_returning_user_goes_straight_to_the_menu(bot: Harness) -> None:
    ann = bot.user("Ann")
    await ann.send("/start")
    await ann.tap("16 or older")
    await ann.send("/start")
    ann.expect("What would you like to do?")
    ann.expect_not("How old are you?")
    ann.expect_not("Privacy notice of")


async def test_age_answer_is_stored_once_double_tap_changes_nothing(
    bot: Harness, clock: FrozenClock
) -> None:
    ann = bot.user("Ann")
    await ann.send("/start")
    await ann.tap("16 or older")
    first_time = clock.now()
    clock.advance(timedelta(seconds=3))
    await ann.tap_data("v1age:minor")  # a second tap (or a forged one) on the old gate
    ann.expect("You have already answered")
    user = await stored_user(bot, ann.id)
    assert user is not None
    assert (user.age_group, user.age_answered_at) == ("adult", first_time)


async def test_restart_in_the_middle_of_the_age_gate(bot: Harness) -> None:
    ann = bot.user("Ann")
    await ann.send("/start")
    await bot.restart()
    await ann.tap("16 or older")  # the button sent before the restart still works
    ann.expect("Privacy notice of")
    ann.expect("What would you like to do?")


async def test_married_minor_counts_as_adult_under_law_99z(bot: Harness) -> None:
    mia = bot.user("Mia")
    await mia.send("/start")
    await mia.tap("Under 16, married")
    mia.expect("Privacy notice of")
    menu = mia.expect("What would you like to do?")
    assert "locked" not in menu.text
    assert not any("legal representative" in b["text"] for b in menu.buttons())


async def test_gdpr_pack_offers_two_answers(gdpr_bot: Harness) -> None:
    ann = gdpr_bot.user("Ann")
    await ann.send("/start")
    gate = ann.expect("How old are you?")
    assert [b["text"] for b in gate.buttons()] == ["16 or older", "Under 16", "🌐 Русский"]
    await ann.tap("16 or older")
    notice = ann.expect("Privacy notice of Active Technologies LLC (ActiveCloud)")
    assert "GDPR Art. 77" in notice.text
    assert "Mailings in Telegram (consent)" in notice.text


async def test_privacy_help_and_cancel(bot: Harness) -> None:
    ann = bot.user("Ann")
    await ann.send("/privacy")  # public information, before /start too
    ann.expect("Privacy notice of EVDELIKS LLC")
    assert await user_count(bot) == 0

    await ann.send("/help")
    for command in ("/start", "/privacy", "/language", "/cancel", "/help"):
        ann.expect(command)

    await ann.send("/start")
    await ann.tap("16 or older")
    await ann.send("/cancel")
    ann.expect("There was nothing to cancel.")
    ann.expect("What would you like to do?")

    await ann.tap("🔒 Privacy notice")
    ann.expect("Privacy notice of EVDELIKS LLC")
    await ann.tap("❓ Help")
    ann.expect("What I can do")


async def test_command_menu_is_set_in_both_languages(bot: Harness) -> None:
    commands = bot.fake.commands
    english = {c["command"]: c["description"] for c in commands[("all_private_chats", "en")]}
    russian = {c["command"]: c["description"] for c in commands[("all_private_chats", "ru")]}
    default = {c["command"]: c["description"] for c in commands[("all_private_chats", "")]}
    assert set(english) == {
        "start",
        "rights",
        "requests",
        "consents",
        "export",
        "privacy",
        "language",
        "settings",
        "help",
        "cancel",
    }
    assert english["privacy"] == "Privacy notice"
    assert russian["privacy"] == "Уведомление о конфиденциальности"
    assert default == russian


async def test_a_burst_of_users_does_not_exhaust_the_database_pool(bot: Harness) -> None:
    """Long polling hands many updates over at once; each needs a connection for its session and
    briefly another for the FSM storage. 40 users at once used to deadlock the pool."""
    people = [bot.user(f"P{i}") for i in range(40)]

    async def first_minutes(person: Person) -> None:
        await person.send("/start")
        await person.tap("16 or older")

    async with asyncio.timeout(90):  # a deadlock never ends; a loaded CI machine is slow
        await asyncio.gather(*(first_minutes(p) for p in people))
    assert await user_count(bot) == 40


async def test_settings_command_shows_language_and_consents(bot: Harness) -> None:
    ann = bot.user("Ann", lang="en")
    await ann.send("/settings")
    ann.expect("Press /start to begin")
    await ann.send("/start")
    await ann.tap("16 or older")

    await ann.send("/settings")
    screen = ann.expect("⚙️ Settings")
    assert "Language: English" in screen.text
    assert "Optional consents on: 0 of 3" in screen.text
    assert [b["text"] for b in screen.buttons()] == ["🌐 Language", "✅ My consents", "← Back"]
    await ann.tap("✅ My consents")
    ann.expect("Your consents")
    await ann.tap("⬜ Marketing messages")
    await ann.tap("✅ I agree")
    await ann.send("/settings")
    ann.expect("Optional consents on: 1 of 3")
    await ann.tap("🌐 Language")
    ann.expect("Choose your language:")
    await ann.tap("Русский")
    await ann.send("/settings")
    screen = ann.expect("⚙️ Настройки")
    assert "Язык: Русский" in screen.text
    assert "Включено необязательных согласий: 1 из 3" in screen.text
