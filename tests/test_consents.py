"""/consents: the information screen first, one-tap withdrawal, independence, history, minors."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from storage.models import ConsentEvent, ConsentState, ConsentText
from tests.kit import Harness, Person
from tests.test_guardian import minor_with_link


async def onboarded(
    bot: Harness, name: str = "Ann", lang: str = "en", *, user_id: int | None = None
) -> Person:
    person = bot.user(name, lang=lang, user_id=user_id)
    await person.send("/start")
    await person.tap("16 or older" if lang == "en" else "16 лет или старше")
    return person


async def events(bot: Harness, user_id: int) -> list[ConsentEvent]:
    async with bot.app.sessions() as session:
        rows = await session.scalars(
            select(ConsentEvent).where(ConsentEvent.user_id == user_id).order_by(ConsentEvent.id)
        )
        return list(rows)


async def states(bot: Harness, user_id: int) -> dict[str, bool]:
    async with bot.app.sessions() as session:
        rows = await session.scalars(select(ConsentState).where(ConsentState.user_id == user_id))
        return {row.purpose: row.granted for row in rows}


async def test_granting_shows_what_the_consent_covers_first(bot: Harness) -> None:
    ann = await onboarded(bot)
    await ann.send("/consents")
    listing = ann.expect("Your consents")
    assert [b["text"] for b in listing.buttons()] == [
        "⬜ Marketing messages",
        "⬜ Training models on personal data",
        "⬜ Cross-border transfer",
        "📜 History",
        "← Back",
    ]
    await ann.tap("⬜ Marketing messages")
    info = ann.expect("Consent: Marketing messages")
    assert info.kind == "edit" and info.message_id == listing.message_id  # edited in place
    for part in (
        "Operator: EVDELIKS LLC, Dolgobrodskaya St. 16",
        "Purpose: Recommendations and offers",
        "Data: Telegram ID, name, language",
        "How long the consent lasts: until you withdraw consent",
        "Actions with the data: collection, storage, use to send messages, deletion.",
        "Methods: automated delivery through Telegram",
        "Authorised persons (processors): mailing and communication providers "
        "(the policy gives no names or countries)",
        "Transfer abroad: none",
        "Your rights (file a request with /rights):",
        "• access — learn whether your data is processed",
        "If you agree, only the processing described here is added",
        "If you refuse or withdraw: you get no marketing messages in this bot",
        "How to withdraw: at any time in /consents by tapping this consent, with the "
        "Unsubscribe button under any marketing message",
        f"recorded with this policy text's identifier: {bot.pack.policy.version}",
        "This is a translation; the Russian text of the policy prevails.",
    ):
        assert part in info.text, part
    assert await events(bot, ann.id) == []  # seeing the terms records nothing

    await ann.tap("← Back")
    assert await events(bot, ann.id) == []
    await ann.tap("⬜ Marketing messages")
    await ann.tap("✅ I agree")
    ann.expect("You agreed to “Marketing messages”")
    listing = ann.expect("✅ Marketing messages: on since")

    [event] = await events(bot, ann.id)
    assert (event.purpose, event.granted, event.source, event.actor_id) == (
        "marketing",
        True,
        "toggle",
        ann.id,
    )
    assert event.policy_version == bot.pack.policy.version
    async with bot.app.sessions() as session:
        shown = await session.get(ConsentText, event.text_id)
    assert shown is not None and "Consent: Marketing messages" in shown.body
    assert shown.body.replace("<b>", "").replace("</b>", "").startswith("Consent: Marketing")


async def test_withdrawal_is_one_tap_and_independent(bot: Harness) -> None:
    ann = await onboarded(bot)
    await ann.send("/consents")
    for title in ("Marketing messages", "Training models on personal data"):
        await ann.tap(f"⬜ {title}")
        await ann.tap("✅ I agree")
    assert await states(bot, ann.id) == {"marketing": True, "model_training": True}

    await ann.tap("✅ Marketing messages")
    ann.expect("does not affect your other consents or processing already done")
    ann.expect("⬜ Marketing messages: off")
    ann.expect("✅ Training models on personal data: on since")
    assert await states(bot, ann.id) == {"marketing": False, "model_training": True}

    await ann.tap("📜 History")
    history = ann.expect("Your consent history")
    assert history.text.count("Marketing messages: given (by you)") == 1
    assert history.text.count("Marketing messages: withdrawn (by you)") == 1
    assert "Training models on personal data: given" in history.text
    assert "23 Nov 2026" in history.text
    await ann.tap("← Back")
    ann.expect("Your consents")


async def test_consents_in_russian(bot: Harness) -> None:
    boris = await onboarded(bot, "Борис", lang="ru")
    await boris.send("/consents")
    boris.expect("Ваши согласия")
    await boris.tap("⬜ Трансграничная передача")
    info = boris.expect("Согласие: Трансграничная передача")
    assert "Трансграничная передача:</b>" not in info.text  # plain text in the fake
    for part in (
        "Оператор: ООО «ЕВДЕЛИКС», 220037, г. Минск",
        "Действия с данными: сбор, хранение, предоставление (передача) уполномоченным лицам за "
        "рубежом",
        "• США: надлежащий уровень защиты персональных данных не обеспечивается. Риски: в США",
        "Ваши права (подать заявление — /rights):",
        "• доступ — узнать, обрабатываются ли ваши данные",
        "Если вы согласитесь",
        "Как отозвать: в любой момент в /consents, нажав на это согласие, или письмом",
    ):
        assert part in info.text, part
    # Only the marketing screen mentions the Unsubscribe button; Russian needs no disclaimer.
    assert "Отписаться" not in info.text and "prevails" not in info.text
    assert "ЕС" not in info.text  # the EU/EEA is adequate: not a transfer needing consent
    await boris.tap("✅ Согласен(на)")
    boris.expect("Вы дали согласие «Трансграничная передача»")
    await boris.tap("✅ Трансграничная передача")
    boris.expect("Это не влияет на другие согласия")


async def test_double_taps_record_one_event(bot: Harness) -> None:
    ann = await onboarded(bot)
    await ann.send("/consents")
    await ann.tap("⬜ Marketing messages")
    await ann.tap("✅ I agree")
    await ann.tap_data("v1con:g:marketing:0")  # the same Agree again
    ann.expect("already on")
    await ann.tap_data("v1con:i:marketing:0")  # an old "⬜" button
    ann.expect("already on")
    await ann.tap_data("v1con:w:marketing:0")
    await ann.tap_data("v1con:w:marketing:0")
    ann.expect("already off")
    assert [e.granted for e in await events(bot, ann.id)] == [True, False]


async def test_concurrent_taps_give_one_change(bot: Harness) -> None:
    ann = await onboarded(bot)
    await ann.send("/consents")
    await ann.tap("⬜ Cross-border transfer")
    await asyncio.gather(*(ann.tap_data("v1con:g:cross_border:0") for _ in range(5)))
    assert [e.granted for e in await events(bot, ann.id)] == [True]
    await asyncio.gather(
        ann.tap_data("v1con:w:cross_border:0"),
        ann.tap_data("v1con:w:cross_border:0"),
        ann.tap_data("v1con:g:cross_border:0"),
    )
    history = [e.granted for e in await events(bot, ann.id)]
    final = await states(bot, ann.id)
    # Whatever the order, the ledger alternates and its last event is the state.
    assert all(a != b for a, b in itertools.pairwise(history))
    assert final["cross_border"] == history[-1]


async def test_a_forged_agree_records_nothing(bot: Harness) -> None:
    ann = await onboarded(bot)
    await ann.tap_data("v1con:g:marketing:0")  # never shown the marketing screen
    assert ann.expect("Please read what this consent covers first").show_alert
    await ann.send("/consents")
    await ann.tap("⬜ Training models on personal data")  # shown another purpose's screen
    await ann.tap_data("v1con:g:marketing:0")
    ann.expect("Please read what this consent covers first")
    assert await events(bot, ann.id) == []
    await ann.tap("✅ I agree")  # the screen actually shown: recorded
    assert [e.purpose for e in await events(bot, ann.id)] == ["model_training"]


async def test_withdrawing_what_was_never_given_records_nothing(bot: Harness) -> None:
    ann = await onboarded(bot)
    await ann.tap_data("v1con:w:marketing:0")
    ann.expect("already off")
    await ann.tap_data("v1unsub:1")
    ann.expect("already")
    assert await events(bot, ann.id) == []


async def test_forged_purposes_are_refused(bot: Harness) -> None:
    ann = await onboarded(bot)
    for forged in ("v1con:g:account:0", "v1con:g:nonsense:0", "v1con:i:payments:0"):
        await ann.tap_data(forged)
        ann.expect("no longer active")
    assert await events(bot, ann.id) == []


async def test_the_ledger_refuses_updates(bot: Harness) -> None:
    ann = await onboarded(bot)
    await ann.send("/consents")
    await ann.tap("⬜ Marketing messages")
    await ann.tap("✅ I agree")
    async with bot.app.sessions() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text("UPDATE consent_events SET granted = false"))


async def test_only_the_representative_grants_a_minors_consent_per_purpose(bot: Harness) -> None:
    kid, payload = await minor_with_link(bot)
    await kid.send("/consents")
    listing = kid.expect("given only by your legal representative")
    assert listing.buttons()[0]["text"] == "🔒 Marketing messages"
    await kid.tap("🔒 Marketing messages")
    assert kid.expect("Only your legal representative can give this consent").show_alert
    kid.expect("is still waiting for your representative")  # the link sent stays valid
    await kid.tap_data("v1con:g:marketing:0")  # forged Agree
    kid.expect("Only your legal representative")
    assert await events(bot, kid.id) == []

    mum = bot.user("Mum")
    await mum.send(f"/start {payload}")
    await mum.tap("I am 16 or older")
    mum.expect("This confirmation turns on no optional consent")
    await mum.tap("✅ I am the legal representative")
    assert await events(bot, kid.id) == []  # confirming the link grants nothing
    await mum.tap_data(f"v1con:g:marketing:{kid.id}")  # Agree without the screen
    mum.expect("Please read what this consent covers first")
    assert await events(bot, kid.id) == []

    await mum.tap("👪 Consents of Kid")
    mum.expect("Consents of Kid")
    await mum.tap("⬜ Marketing messages")
    mum.expect("Consent: Marketing messages")
    await mum.tap("✅ I agree")
    mum.expect("✅ Marketing messages: on since")
    mum.expect("⬜ Training models on personal data: off")  # per purpose: one at a time
    [event] = await events(bot, kid.id)
    assert (event.source, event.actor_id) == ("guardian", mum.id)
    await bot.settle()
    assert "Your legal representative changed a consent" in kid.inbox[-1].text
    assert await events(bot, mum.id) == []  # nothing recorded against the representative

    # Even after the confirmation the minor cannot grant, but sees the state and withdraws.
    await kid.send("/consents")
    listing = kid.expect("✅ Marketing messages: on since")
    assert [b["text"] for b in listing.buttons()][:2] == [
        "✅ Marketing messages",
        "🔒 Training models on personal data",
    ]
    await kid.tap("🔒 Training models on personal data")
    kid.expect("Only your legal representative")
    await kid.tap_data("v1con:g:model_training:0")
    kid.expect("Only your legal representative")
    await kid.tap("✅ Marketing messages")
    kid.expect("Consent to “Marketing messages” withdrawn")
    assert [(e.granted, e.source, e.actor_id) for e in await events(bot, kid.id)] == [
        (True, "guardian", mum.id),
        (False, "toggle", kid.id),
    ]
    await kid.tap("📜 History")
    kid.expect("by your legal representative")


async def test_a_minor_is_refused_in_russian(bot: Harness) -> None:
    kid, _ = await minor_with_link(bot, "Петя", lang="ru")
    await kid.send("/consents")
    kid.expect("Необязательные согласия за вас даёт только законный представитель")
    await kid.tap("🔒 Маркетинговые сообщения")
    kid.expect("Это согласие может дать только ваш законный представитель")
    kid.expect("Это согласие за вас может дать только ваш законный представитель")
    assert await events(bot, kid.id) == []


async def test_a_representative_acts_only_from_their_own_chat(bot: Harness) -> None:
    kid, payload = await minor_with_link(bot)
    mum = bot.user("Mum")
    await mum.send(f"/start {payload}")
    await mum.tap("I am 16 or older")
    await mum.tap("✅ I am the legal representative")
    in_group = mum.in_chat(-100777)
    await in_group.tap_data(f"v1con:l:-:{kid.id}")
    assert not in_group.last.find("Consents of Kid")
    assert await events(bot, kid.id) == []


async def test_only_the_representative_can_act_for_a_minor(bot: Harness) -> None:
    kid, payload = await minor_with_link(bot)
    mum = bot.user("Mum")
    await mum.send(f"/start {payload}")
    await mum.tap("I am 16 or older")
    await mum.tap("✅ I am the legal representative")
    stranger = await onboarded(bot, "Eve")
    for forged in (f"v1con:l:-:{kid.id}", f"v1con:g:marketing:{kid.id}", f"v1con:h:-:{kid.id}"):
        await stranger.tap_data(forged)
        stranger.expect("no longer active")
    other_kid, _ = await minor_with_link(bot, "Other")
    await mum.tap_data(f"v1con:g:marketing:{other_kid.id}")
    mum.expect("no longer active")
    assert await events(bot, kid.id) == [] and await events(bot, other_kid.id) == []


async def test_consents_before_onboarding(bot: Harness) -> None:
    ann = bot.user("Ann")
    await ann.send("/consents")
    ann.expect("Press /start")
    await ann.tap_data("v1con:l:-:0")
    ann.expect("Press /start")


async def test_staff_record_a_written_request(bot: Harness) -> None:
    ann = await onboarded(bot)
    staff = bot.staff("Sam")
    await staff.send(f"/consent {ann.id} marketing on")
    staff.expect(f"Записано: пользователь {ann.id}, marketing → on")
    await bot.settle()
    assert "On your written request, staff recorded" in ann.inbox[-1].text
    await staff.send(f"/consent {ann.id} marketing on")
    staff.expect("Записывать нечего")
    await staff.send(f"/consent {ann.id} account on")
    staff.expect("Нет такого пользователя или цели")
    await staff.send("/consent")
    staff.expect("Цели: marketing, model_training, cross_border")
    kid = bot.user("Kid")
    await kid.send("/start")
    await kid.tap("Under 16")
    await staff.send(f"/consent {kid.id} marketing on")
    staff.expect("согласие за него может дать только законный представитель")
    eve = bot.staff("Eve", status="member")
    await eve.send(f"/consent {ann.id} marketing off")
    eve.expect("только сотрудники")
    [event] = await events(bot, ann.id)
    assert (event.source, event.actor_id) == ("staff", staff.id)
    await ann.send("/consents")
    await ann.tap("📜 History")
    ann.expect("Marketing messages: given (by staff on your written request)")


async def test_withdrawing_model_training_files_a_task(bot: Harness) -> None:
    ann = await onboarded(bot)
    staff = bot.staff("Sam")
    await ann.send("/consents")
    for title in ("Marketing messages", "Training models on personal data"):
        await ann.tap(f"⬜ {title}")
        info = ann.expect(f"Consent: {title}")
        # Each screen says how to withdraw it; only marketing mentions Unsubscribe.
        assert ("Unsubscribe" in info.text) == (title == "Marketing messages")
        await ann.tap("✅ I agree")
    await ann.tap("✅ Marketing messages")  # messages only: no task
    await ann.tap("✅ Training models on personal data")
    ann.expect("Consent to “Training models on personal data” withdrawn")
    assert await states(bot, ann.id) == {"marketing": False, "model_training": False}
    await bot.settle()
    [card] = bot.cards()
    assert "Заявление №1 — отзыв согласия" in card.text
    assert "Отозвано согласие: прекратить эту обработку" in card.text
    assert "Обучение моделей на персональных данных" in card.text
    assert "Срок: 08.12.2026 (15 календарных дней)" in card.text  # Law 99-Z art. 10
    told = ann.inbox[-1].text
    assert "Request #1 was filed for staff to stop it everywhere" in told and "08 Dec 2026" in told

    await staff.tap("✅ Выполнено")
    await bot.settle()
    assert "processing for “Training models on personal data” has stopped" in ann.inbox[-1].text


async def test_a_withdrawal_task_in_russian(bot: Harness) -> None:
    boris = await onboarded(bot, "Борис", lang="ru")
    await boris.send("/consents")
    await boris.tap("⬜ Трансграничная передача")
    await boris.tap("✅ Согласен(на)")
    await boris.tap("✅ Трансграничная передача")
    await bot.settle()
    assert "Заявление №1 передано сотрудникам" in boris.inbox[-1].text
    assert "до 08.12.2026" in boris.inbox[-1].text
