"""Rights requests from both sides: filing every type, verification through Telegram, the card
and each staff action, relays both ways, deadlines, and nothing lost or duplicated."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from unittest.mock import AsyncMock

import pytest
from sqlalchemy import func, select

from bot.core.clock import FrozenClock
from bot.domain.requests.desk import Desk
from bot.domain.requests.desk import RequestOutcome as Outcome
from bot.telegram.files import REGISTER_COLUMNS, CsvStream, register_rows
from storage.models import AuditEntry, OutboxItem, Request, RequestMessage, User
from storage.repositories import Repositories
from tests.fake_telegram import Event, FakeTelegram
from tests.kit import ADMIN_CHAT_ID, Harness, Person
from tests.test_consents import onboarded


async def stored(bot: Harness, request_id: int) -> Request:
    async with bot.app.sessions() as session:
        request = await session.get(Request, request_id)
    assert request is not None
    return request


async def request_count(bot: Harness) -> int:
    async with bot.app.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Request)) or 0)


async def file_erasure(bot: Harness, person: Person, reason: str | None = "Moving away") -> int:
    await person.send("/rights")
    await person.tap("🗑 Erase my data")
    if person.last.find("share your contact"):
        await person.send_contact("+375 (29) 123-45-67", user_id=person.id)
    if reason is None:
        await person.tap("Skip")
    else:
        await person.send(reason)
    person.expect("Please check your request")
    await person.tap("✅ Send the request")
    received = person.expect("received: erasure")
    return int(received.text.split("#")[1].split()[0])


class OnTheDesk(NamedTuple):
    person: Person
    staff: Person
    number: int
    card: Event


async def erasure_on_the_desk(bot: Harness, person: Person | None = None) -> OnTheDesk:
    """`person` (by default Ann, onboarded here) filed an erasure; Sam is staff (made after
    `person`, before the filing); the one card is in the admin group."""
    if person is None:
        person = await onboarded(bot, "Ann")
    staff = bot.staff("Sam")
    number = await file_erasure(bot, person)
    await bot.settle()
    [card] = bot.cards()
    return OnTheDesk(person, staff, number, card)


async def test_every_request_type_is_filed(bot: Harness) -> None:
    ann = await onboarded(bot, "Ann")
    ann.username = "ann_s"
    await ann.send("/start")  # refresh the stored @username
    await ann.send("/rights")
    listing = ann.expect("Your rights")
    assert [b["text"] for b in listing.buttons()] == [
        "🔎 What do you hold about me?",
        "📤 Who was my data given to?",  # Law 99-Z art. 12
        "✏️ Correct my data",
        "🗑 Erase my data",
        "⏸ Restrict processing",
        "✋ Object to processing",
        "↩️ Withdraw a consent",
        "⚖️ Where to complain",
        "← Back",
    ]

    await ann.tap("🔎 What do you hold about me?")
    confirm = ann.expect("Please check your request")
    assert "No details are needed" in confirm.text
    # Law 99-Z art. 11: 5 working days from Monday 23 November 2026.
    assert "The operator answers by 30 Nov 2026 (5 working days)" in confirm.text
    await ann.tap("✅ Send the request")
    ann.expect("Request #1 received: access. The operator answers by 30 Nov 2026")

    await ann.send("/rights")
    await ann.tap("✏️ Correct my data")
    ann.expect("share your contact")
    await ann.send_contact("+375 29 123 45 67", user_id=ann.id)
    ann.expect("your number is verified")
    ann.expect("Which data is wrong?")
    await ann.tap("Other data (kept outside the bot)")
    ann.expect("What is the correct value?")
    await ann.send("e-mail: ann@example.org")
    confirm = ann.expect("Please check your request")
    assert "Data: Other data (kept outside the bot)" in confirm.text
    assert "Correct value: e-mail: ann@example.org" in confirm.text
    await ann.tap("✅ Send the request")
    ann.expect("Request #2 received: correction")

    assert await file_erasure(bot, ann, reason=None) == 3  # phone already verified: no question
    # A second erasure while this one is open: the open one is shown, nothing is filed.
    await ann.send("/rights")
    await ann.tap("🗑 Erase my data")
    ann.expect("You already have an open request #3 (erasure), due by 08 Dec 2026")
    ann.expect_not("Please check your request")

    await ann.send("/rights")
    await ann.tap("⏸ Restrict processing")
    await ann.send("Checking accuracy")
    await ann.tap("✅ Send the request")
    ann.expect("Request #4 received: restriction")

    await ann.send("/rights")
    await ann.tap("✋ Object to processing")
    choices = ann.expect("Which processing do you object to?")
    assert [b["text"] for b in choices.buttons()][:2] == [
        "Security and analytics",
        "Marketing messages",
    ]
    await ann.tap("Security and analytics")
    await ann.send("I do not want profiling")
    ann.expect("Processing: Security and analytics")
    await ann.tap("✅ Send the request")
    ann.expect("Request #5 received: objection")

    await ann.send("/rights")
    await ann.tap("↩️ Withdraw a consent")
    ann.expect("Your consents")
    await ann.send("/rights")
    await ann.tap("⚖️ Where to complain")
    ann.expect("National Personal Data Protection Center of the Republic of Belarus")
    ann.expect("You may complain to the National Personal Data Protection Center")
    # Law 99-Z art. 15: the authority's decision, not the operator, goes to a court.
    ann.expect("Center on your complaint can be appealed to a court")

    await bot.settle()
    cards = bot.cards()
    assert len(cards) == 5
    card = cards[1].text
    for part in (
        "Заявление №2 — исправление",
        "Статус: 🆕 принято",
        f"Пользователь: ID {ann.id}, @ann_s, Ann, язык en",
        "Проверка: аккаунт Telegram и собственный контакт пользователя (+375291234567)",
        "Получено: 23.11.2026 12:00",
        "Срок: 08.12.2026 (15 календарных дней)",
        "Данные для исправления: other",
        "Правильное значение: e-mail: ann@example.org",
    ):
        assert part in card, part
    assert [b["text"] for b in cards[0].buttons()] == [
        "🙋 Взять",
        "✅ Выполнено",
        "⛔ информация не предоставляется по закону",  # 99-Z art. 11(4), the one access ground
        "❓ Вопрос",
        "🪪 Уточнить",
        "🔒 Заблокировать",
        "📋 Шаблон",
    ]  # no Extend: Law 99-Z gives none; no "unfounded or excessive": that is GDPR art. 12(5)
    await ann.send("/requests")
    listing = ann.expect("Your requests")
    assert "#3 erasure — received, due 08 Dec 2026" in listing.text


async def test_filing_in_russian_and_the_gdpr_pack(gdpr_bot: Harness) -> None:
    boris = await onboarded(gdpr_bot, "Борис", lang="ru")
    await boris.send("/rights")
    await boris.tap("📦 Выгрузить мои данные")
    confirm = boris.expect("Проверьте заявление")
    assert "ответит до 23.12.2026 (30 календарных дней, но не дольше 1 месяца)" in confirm.text
    await boris.tap("✅ Отправить заявление")
    boris.expect("Заявление №1 принято: переносимость")
    await gdpr_bot.settle()
    assert "Заявление №1 — переносимость" in gdpr_bot.cards()[0].text


async def test_verification_accepts_only_the_senders_own_contact(bot: Harness) -> None:
    ann = await onboarded(bot, "Ann")
    await ann.send("/rights")
    await ann.tap("🗑 Erase my data")
    prompt = ann.expect("share your contact")
    assert prompt.markup is not None and prompt.markup["keyboard"][0][0]["request_contact"]
    await ann.send("+375291234567")
    ann.expect("a typed number cannot be verified")
    await ann.send_contact("+375291111111", user_id=ann.id + 1)  # someone else's contact
    ann.expect("This is not your own contact")
    await ann.send_contact("+375291111111")  # a contact card with no Telegram user
    ann.expect("This is not your own contact")
    async with bot.app.sessions() as session:
        user = await session.get(User, ann.id)
        assert user is not None and user.phone is None
    await ann.send_contact("375-29-765-43-21", user_id=ann.id)
    ann.expect("your number is verified")
    async with bot.app.sessions() as session:
        user = await session.get(User, ann.id)
        assert user is not None and user.phone == "+375297654321"
        assert user.phone_verified_at is not None


async def test_back_cancel_and_limits(bot: Harness) -> None:
    ann = await onboarded(bot, "Ann")
    await ann.send("/rights")
    await ann.tap("✏️ Correct my data")
    await ann.send_contact("+375291234567", user_id=ann.id)
    await ann.tap("First name")
    ann.expect("What is the correct value?")
    await ann.tap("← Back")
    ann.expect("Which data is wrong?")
    await ann.send("typed instead of a button")
    ann.expect("Please answer with the buttons")
    await ann.tap("Last name")
    await ann.send("x" * 1001)
    ann.expect("That is 1001 characters; the limit is 1000")
    await ann.send_photo()  # a file while filing goes with the request
    ann.expect("The file is added")
    await ann.send("Ann Smith")
    await ann.tap("✖ Cancel")
    ann.expect("No request was sent")
    await ann.tap_data("v1rights:submit:-")  # the old Submit after Cancel
    ann.expect("no longer active")
    assert await request_count(bot) == 0


async def test_double_submit_files_once(bot: Harness) -> None:
    ann = await onboarded(bot, "Ann")
    await ann.send("/rights")
    await ann.tap("🔎 What do you hold about me?")
    await ann.tap("✅ Send the request")
    await ann.tap("✅ Send the request")
    ann.expect("no longer active")
    assert await request_count(bot) == 1


async def test_staff_handle_a_request_from_the_card(bot: Harness, clock: FrozenClock) -> None:
    ann, staff, number, _ = await erasure_on_the_desk(bot)

    await staff.tap("🙋 Взять")
    await bot.settle()
    card = bot.cards()[0]
    assert "Статус: 🔧 в работе" in bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]["text"]
    assert f"Request #{number} (erasure) is now being handled" in ann.inbox[-1].text

    await staff.tap("❓ Вопрос")  # a question leaves the due date alone
    prompt = staff.expect("ответьте на это сообщение вопросом по заявлению")
    assert "Срок не меняется: 08.12.2026" in prompt.text
    assert prompt.markup == {"force_reply": True, "selective": True}
    clock.advance(timedelta(days=8))
    await staff.reply_to(prompt, "Which account: the app or the website?")
    await bot.settle()
    question = ann.inbox[-1]
    assert "The operator asks about request #1 (erasure):" in question.text
    assert "The answer is still due by 08 Dec 2026" in question.text
    assert (await stored(bot, number)).status == "waiting_user"
    clock.advance(timedelta(days=2))
    await ann.reply_to(question, "The app")
    ann.expect("Request #1 is still due by 08 Dec 2026")  # a question moved nothing

    # A clarification of identity or scope restarts the term from the answer (seed ch. 7),
    # and the prompt shows the effect before staff confirm.
    await staff.tap("🪪 Уточнить")
    prompt = staff.expect("Влияние на срок: срок (сейчас 08.12.2026) начнётся заново")
    assert "при ответе сегодня — до 18.12.2026" in prompt.text
    await staff.reply_to(prompt, "Please confirm the phone number of the account")
    await bot.settle()
    clarify = ann.inbox[-1]
    assert "needs you to clarify your identity or what you ask" in clarify.text
    assert "Please confirm the phone number of the account" in clarify.text
    assert "starts again from your reply" in clarify.text
    clock.advance(timedelta(days=2))  # the user answers on 5 Dec: the clock restarts
    await ann.reply_to(clarify, "The app")
    ann.expect("Request #1 is now due by 20 Dec 2026")
    request = await stored(bot, number)
    assert request.status == "in_progress"
    assert request.due_at.astimezone(bot.pack.zone).date().isoformat() == "2026-12-20"
    await bot.settle()
    # Found by its text: days passed, so the scheduler may have posted a daily list meanwhile.
    relays = [e for e in bot.fake.events if "Ann по заявлению №1:\nThe app" in e.text]
    assert len(relays) == 2  # the answer to the question, then to the clarification
    assert relays[-1].raw["reply_parameters"]["message_id"] == card.message_id

    await staff.tap("✅ Выполнено")  # an erasure: the user is told, then erased
    await bot.settle()
    assert "Your erasure request is done" in ann.inbox[-1].text
    final = bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]
    assert "Данные заявления удалены" in final["text"] and "reply_markup" not in final
    assert "Ann" not in final["text"]
    await staff.tap_data(f"v1req:{number}:done")
    staff.expect("больше не действует")


async def test_refuse_and_block_reach_the_user(bot: Harness, clock: FrozenClock) -> None:
    ann = await onboarded(bot, "Ann")
    staff = bot.staff("Sam")
    bob = await onboarded(bot, "Bob")
    first = await file_erasure(bot, ann)
    second = await file_erasure(bot, bob, "Second")
    await bot.settle()
    cards = bot.cards()

    first_card = bot.fake.messages[(ADMIN_CHAT_ID, cards[0].message_id)]
    assert "⛔ есть законные основания продолжать обработку" in str(first_card["reply_markup"])
    await staff.tap_data(f"v1ground:{first}:lawful_grounds", first_card)
    prompt = staff.expect("пояснением отказа")
    assert "на основании: есть законные основания продолжать обработку (п. 4 ст. 13" in prompt.text
    await staff.reply_to(prompt, "We must keep contract data for 3 years")
    await bot.settle()
    refusal = ann.inbox[-1].text
    assert (
        "was refused on the ground: the law gives grounds to continue processing "
        "(Law No. 99-Z, art. 13(4)). Explanation: We must keep contract data for 3 years"
    ) in refusal
    # Where to complain, with contacts, and the court (Law 99-Z art. 15).
    assert "Where to complain: to the National Personal Data Protection Center" in refusal
    assert "https://cpd.by" in refusal and "can be appealed to a court" in refusal
    assert (await stored(bot, first)).status == "refused"

    await staff.tap_data(
        f"v1req:{second}:block", bot.fake.messages[(ADMIN_CHAT_ID, cards[1].message_id)]
    )
    prompt = staff.expect("ответьте датой")
    await staff.reply_to(prompt, "tomorrow maybe")
    staff.expect("Начните с будущей даты")
    await staff.send("01.01.2020 past")
    staff.expect("Начните с будущей даты")
    await staff.send("31.12.2027 tax records")
    await bot.settle()
    assert "keeping your data until 31 Dec 2027 (tax records)" in bob.inbox[-1].text
    # Not erasing now is a refusal in part: where to complain comes with it (art. 15).
    told = bob.inbox[-1].text
    assert "Where to complain: to the National Personal Data Protection Center" in told
    request = await stored(bot, second)
    assert request.status == "blocked" and request.reason == "tax records"
    card = bot.fake.messages[(ADMIN_CHAT_ID, cards[1].message_id)]["text"]
    assert "Хранить до: 31.12.2027" in card


async def test_relay_both_ways(bot: Harness) -> None:
    ann, staff, _, card = await erasure_on_the_desk(bot)
    await staff.reply_to(card, "Hello, we are on it")
    queued = staff.expect("В очереди для пользователя")
    await bot.settle()
    assert (
        "Отправлено пользователю" in bot.fake.messages[(ADMIN_CHAT_ID, queued.message_id)]["text"]
    )
    message = ann.inbox[-1]
    assert "The operator about request #1 (erasure):\nHello, we are on it" in message.text
    await ann.reply_to(message, "Thanks! One more detail")
    ann.expect("Sent to the operator with request #1")
    await bot.settle()
    relayed = bot.fake.events[-1]
    assert relayed.chat_id == ADMIN_CHAT_ID and "One more detail" in relayed.text
    await staff.reply_to(relayed, "Noted")  # a reply to the relayed message works too
    await bot.settle()
    assert "Noted" in ann.inbox[-1].text
    await ann.send("Just chatting")  # not a reply, nothing waiting: not relayed
    ann.expect("I work with buttons and commands")


async def test_forged_buttons_and_outsiders_change_nothing(bot: Harness) -> None:
    ann = await onboarded(bot, "Ann")
    eve = await onboarded(bot, "Eve")
    staff = bot.staff("Sam")
    number = await file_erasure(bot, ann)
    await bot.settle()
    [card] = bot.cards()

    await eve.tap_data(f"v1req:{number}:done")  # a user forging a staff button in private
    eve.expect("no longer active")
    member = bot.staff("Mallory", status="member")
    await member.tap_data(
        f"v1req:{number}:done", bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]
    )
    assert member.expect("Только для сотрудников").show_alert
    await member.reply_to(card, "I am not staff")
    member.expect("только сотрудники")
    await staff.tap_data("v1req:999:done")
    staff.expect("больше не действует")
    assert (await stored(bot, number)).status == "received"
    assert not any("I am not staff" in e.text for e in ann.inbox)
    async with bot.app.sessions() as session:
        refused = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.allowed.is_(False)))
        )
    assert {(a.actor_id, a.action) for a in refused} == {
        (member.id, "request.done"),
        (member.id, "request.reply"),
    }
    await eve.send("/requests")
    eve.expect("You have no requests yet")


async def test_admin_group_unreachable_then_reachable(
    bot: Harness, clock: FrozenClock, fake: FakeTelegram
) -> None:
    group = fake.chats.pop(ADMIN_CHAT_ID)
    ann = await onboarded(bot, "Ann")
    await file_erasure(bot, ann)  # the user gets the number at once
    await bot.settle()
    assert bot.cards() == []
    fake.chats[ADMIN_CHAT_ID] = group
    await bot.settle()
    assert bot.cards() == []  # waits for its backoff
    clock.advance(timedelta(minutes=1))
    await bot.settle()
    clock.advance(timedelta(hours=1))
    await bot.settle()
    assert len(bot.cards()) == 1


async def test_restart_between_filing_and_delivery(
    bot: Harness, clock: FrozenClock, fake: FakeTelegram
) -> None:
    group = fake.chats.pop(ADMIN_CHAT_ID)
    ann = await onboarded(bot, "Ann")
    await file_erasure(bot, ann)
    await bot.restart()
    fake.chats[ADMIN_CHAT_ID] = group
    clock.advance(timedelta(hours=1))
    await bot.settle()
    await bot.restart()
    await bot.settle()
    assert len(bot.cards()) == 1


async def test_a_user_who_blocked_the_bot_is_shown_on_the_card(bot: Harness) -> None:
    ann, staff, _, card = await erasure_on_the_desk(bot)
    bot.fake.blocked.add(ann.id)
    await staff.tap("🙋 Взять")
    await bot.settle()
    assert "Пользователь недоступен" in bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]["text"]
    async with bot.app.sessions() as session:
        kept = list(await session.scalars(select(OutboxItem).where(OutboxItem.user_id == ann.id)))
    assert [i.status for i in kept] == ["blocked"] and kept[0].text


async def test_forum_groups_get_a_topic_per_request_type(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock
) -> None:
    fake.add_group(ADMIN_CHAT_ID, "Staff", forum=True)
    harness = Harness(fake, tmp_path, clock=clock)
    await harness.start()
    try:
        ann = await onboarded(harness, "Ann")
        await file_erasure(harness, ann)
        await file_erasure(harness, await onboarded(harness, "Bob"), "again")
        await ann.send("/rights")
        await ann.tap("🔎 What do you hold about me?")
        await ann.tap("✅ Send the request")
        await harness.settle()
        threads = [c.raw.get("message_thread_id") for c in harness.cards()]
        assert threads[0] == threads[1] != threads[2]
        assert sorted(fake.topics.values()) == ["доступ", "удаление"]
    finally:
        await harness.stop()


async def test_two_instances_creating_a_topic_at_once_keep_one(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another instance stores its topic for the type while this one creates its own: the
    stored one serves, and the topic made here is deleted."""
    fake.add_group(ADMIN_CHAT_ID, "Staff", forum=True)
    harness = Harness(fake, tmp_path, clock=clock)
    await harness.start()
    try:
        theirs = 999_001
        real = harness.app.bot.create_forum_topic

        async def created_elsewhere_first(*args: Any, **kwargs: Any) -> Any:
            fake.topics[(ADMIN_CHAT_ID, theirs)] = "удаление"
            async with harness.app.sessions() as session:
                await Repositories(session).state.set(f"topic:{ADMIN_CHAT_ID}:erasure", str(theirs))
                await session.commit()
            return await real(*args, **kwargs)

        monkeypatch.setattr(harness.app.bot, "create_forum_topic", created_elsewhere_first)
        await file_erasure(harness, await onboarded(harness, "Ann"))
        await harness.settle()
        [card] = harness.cards()
        assert card.raw.get("message_thread_id") == str(theirs)
        assert list(fake.topics) == [(ADMIN_CHAT_ID, theirs)]  # ours was deleted
    finally:
        await harness.stop()


@pytest.mark.parametrize(
    ("lang", "button", "send", "due"),
    [
        ("en", "🔎 What do you hold about me?", "✅ Send the request", "answers by 25 Apr 2026"),
        ("ru", "🔎 Какие данные обо мне есть?", "✅ Отправить заявление", "ответит до 25.04.2026"),
    ],
)
async def test_access_term_across_a_holiday_and_a_transferred_saturday(
    bot: Harness, clock: FrozenClock, lang: str, button: str, send: str, due: str
) -> None:
    # Law 99-Z art. 11: 5 working days. Filed Thursday 16 April 2026; Monday 20 April is a day
    # off moved from Saturday 25 April, Tuesday 21 April is Radunitsa: Fri 17, Wed 22, Thu 23,
    # Fri 24 and the working Saturday 25 April.
    clock.set(datetime(2026, 4, 16, 9, 0, tzinfo=UTC))
    ann = await onboarded(bot, "Ann", lang=lang)
    await ann.send("/rights")
    await ann.tap(button)
    await ann.tap(send)
    ann.expect(due)


async def test_a_gdpr_request_in_february_is_due_within_one_month(
    gdpr_bot: Harness, clock: FrozenClock
) -> None:
    # The seed's 30 days from 1 February 2027 would end on 3 March; GDPR art. 12(3)'s one month
    # ends on 1 March: the earlier date is the due date, on the screen and on the card.
    clock.set(datetime(2027, 2, 1, 9, 0, tzinfo=UTC))
    ann = await onboarded(gdpr_bot, "Ann")
    await ann.send("/rights")
    await ann.tap("🗑 Erase my data")
    if ann.last.find("share your contact"):
        await ann.send_contact("+375 (29) 123-45-67", user_id=ann.id)
    await ann.tap("Skip")
    ann.expect("The operator answers by 01 Mar 2027 (30 calendar days, at most 1 month)")
    await ann.tap("✅ Send the request")
    await gdpr_bot.settle()
    [card] = gdpr_bot.cards()
    assert "Срок: 01.03.2027 (30 календарных дней, но не дольше 1 месяца)" in card.text


async def test_due_reminders_and_register(bot: Harness, clock: FrozenClock) -> None:
    await bot.app.reminders.stop()  # the test runs the scheduler's checks itself
    ann = await onboarded(bot, "Ann")
    staff = bot.staff("Sam")
    first = await file_erasure(bot, ann)  # due 8 Dec
    clock.advance(timedelta(days=10))
    second = await file_erasure(bot, await onboarded(bot, "Bob"), "later")  # due 18 Dec
    await bot.settle()
    await staff.tap_data(
        f"v1ground:{second}:lawful_grounds",
        bot.fake.messages[(ADMIN_CHAT_ID, bot.cards()[1].message_id)],
    )
    await staff.reply_to(staff.expect("пояснением отказа"), "Nothing to erase")
    third = await file_erasure(bot, await onboarded(bot, "Carl"), "third")
    clock.advance(timedelta(days=13))  # 16 Dec: first overdue, third due on 18 Dec

    await staff.send("/due")
    report = staff.expect("Открытые заявления по сроку")
    overdue, soon = report.text.index("Просрочены"), report.text.index("ближайшие 3 дня")
    assert overdue < report.text.index(f"№{first} ") < soon < report.text.index(f"№{third} ")
    assert f"№{second} " not in report.text

    clock.set(datetime(2026, 12, 17, 5, 59, tzinfo=UTC))  # 08:59 in Minsk
    assert not await bot.app.reminders.tick()
    clock.advance(timedelta(minutes=1))
    assert await bot.app.reminders.tick()
    assert not await bot.app.reminders.tick()  # once a day
    await bot.settle()
    assert "Открытые заявления по сроку: 2 заявления" in bot.fake.events[-1].text

    await staff.send("/register")
    document = next(e for e in reversed(bot.fake.events) if e.kind == "document")
    assert "Реестр всех заявлений: 3 заявления" in document.text
    rows = list(csv.reader(io.StringIO(document.raw["content"].decode())))
    assert rows[0] == [
        "number",
        "type",
        "user_id",
        "received",
        "due",
        "status",
        "closed",
        "handled_by",
    ]
    assert [r[0] for r in rows[1:]] == [str(first), str(second), str(third)]
    assert rows[2][5] == "refused" and rows[2][7] == str(staff.id) and rows[2][6]
    assert rows[1][2] == str(ann.id)
    # The file is streamed from the database: fetched a batch at a time, uploaded in chunks.
    async with bot.app.sessions() as session:
        rows_stream = register_rows(Repositories(session).requests.register(batch=1))
        stream = CsvStream(REGISTER_COLUMNS, rows_stream, "r.csv", chunk_size=16)
        chunks = [chunk async for chunk in stream.read(bot.app.bot)]
    assert len(chunks) > 3 and b"".join(chunks) == document.raw["content"]

    outsider = bot.staff("Eve", status="member")
    await outsider.send("/register")
    outsider.expect("только сотрудники")


async def test_menu_leads_to_rights_and_requests(bot: Harness) -> None:
    ann = await onboarded(bot, "Ann")
    await ann.tap("📋 My requests")
    ann.expect("You have no requests yet")
    await ann.tap("← Back")  # the list was the menu, edited in place; Back edits it back
    await ann.tap("⚖️ My rights")
    await ann.tap("🗑 Erase my data")
    await ann.send("/cancel")  # also from the contact step, and the keyboard goes away
    cancelled = ann.expect("Cancelled")
    assert cancelled.raw.get("reply_markup") == {"remove_keyboard": True}
    assert await request_count(bot) == 0


async def test_staff_list_is_refreshed_when_membership_changes(bot: Harness) -> None:
    ann = await onboarded(bot, "Ann")
    number = await file_erasure(bot, ann)
    await bot.settle()
    [card] = bot.cards()
    newcomer = bot.staff("Nina", status="member")
    card_message = bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]
    await newcomer.tap_data(f"v1req:{number}:take", card_message)
    newcomer.expect("Только для сотрудников")  # the administrators are now cached
    bot.fake.members[(ADMIN_CHAT_ID, newcomer.id)] = "administrator"
    await newcomer.tap_data(f"v1req:{number}:take", card_message)
    newcomer.expect("Только для сотрудников")  # still the cached list
    await bot.feed(
        {
            "chat_member": {
                "chat": bot.fake.chats[ADMIN_CHAT_ID],
                "from": newcomer.as_user(),
                "date": 0,
                "old_chat_member": {"status": "member", "user": newcomer.as_user()},
                "new_chat_member": {
                    "status": "administrator",
                    "user": newcomer.as_user(),
                    "can_be_edited": False,
                    "is_anonymous": False,
                    "can_manage_chat": True,
                    "can_delete_messages": True,
                    "can_manage_video_chats": False,
                    "can_restrict_members": True,
                    "can_promote_members": False,
                    "can_change_info": False,
                    "can_invite_users": True,
                    "can_post_stories": False,
                    "can_edit_stories": False,
                    "can_delete_stories": False,
                    "can_send_welcome_messages": False,
                },
            }
        }
    )
    await newcomer.tap_data(f"v1req:{number}:take", card_message)
    assert (await stored(bot, number)).status == "in_progress"


async def test_gdpr_clarification_pauses_the_clock(gdpr_bot: Harness, clock: FrozenClock) -> None:
    ann = await onboarded(gdpr_bot, "Ann")
    staff = gdpr_bot.staff("Sam")
    number = await file_erasure(gdpr_bot, ann)  # 23 Nov + 30 days: 23 Dec
    await gdpr_bot.settle()
    clock.advance(timedelta(days=10))  # 3 Dec
    await staff.tap("🪪 Уточнить")
    prompt = staff.expect("срок (сейчас 23.12.2026) приостанавливается до его ответа")
    await staff.reply_to(prompt, "Which of your two accounts?")
    await gdpr_bot.settle()
    clarify = ann.inbox[-1]
    assert "is paused until your reply and then continues" in clarify.text
    clock.advance(timedelta(days=10))  # answered on 13 Dec: ten days waited are added
    await ann.reply_to(clarify, "The older one")
    ann.expect(f"Request #{number} is now due by 02 Jan 2027")


async def test_gdpr_extension_once_and_only_within_the_first_term(
    gdpr_bot: Harness, clock: FrozenClock
) -> None:
    ann = await onboarded(gdpr_bot, "Ann")
    bob = await onboarded(gdpr_bot, "Bob")
    staff = gdpr_bot.staff("Sam")
    first = await file_erasure(gdpr_bot, ann)  # due 23 Dec 2026
    second = await file_erasure(gdpr_bot, bob)
    await gdpr_bot.settle()
    cards = gdpr_bot.cards()
    assert "⏳ Продлить" in [b["text"] for b in cards[0].buttons()]

    card = gdpr_bot.fake.messages[(ADMIN_CHAT_ID, cards[0].message_id)]
    await staff.tap_data(f"v1req:{first}:extend", card)
    prompt = staff.expect("Влияние на срок: 23.12.2026 → 23.02.2027")
    await staff.reply_to(prompt, "Data from three archived systems must be gathered")
    await gdpr_bot.settle()
    told = ann.inbox[-1].text
    assert "extended the term for the answer to 23 Feb 2027" in told
    assert "Reason: Data from three archived systems must be gathered" in told
    assert (await stored(gdpr_bot, first)).due_at.astimezone(gdpr_bot.pack.zone).month == 2
    edited = gdpr_bot.fake.messages[(ADMIN_CHAT_ID, cards[0].message_id)]
    assert "⏳ Продлить" not in str(edited.get("reply_markup"))
    await staff.tap_data(f"v1req:{first}:extend", card)  # an old button: once only
    assert staff.expect("уже продлевалось").show_alert

    clock.advance(timedelta(days=31))  # past the second request's first term from receipt
    await staff.tap_data(
        f"v1req:{second}:extend", gdpr_bot.fake.messages[(ADMIN_CHAT_ID, cards[1].message_id)]
    )
    assert staff.expect("только в течение первого срока с момента получения").show_alert
    assert (await stored(gdpr_bot, second)).due_at.astimezone(gdpr_bot.pack.zone).day == 23


async def test_two_extensions_at_once_give_one(gdpr_bot: Harness) -> None:
    """Both staff members passed the once-only check before either committed (two instances):
    the compare-and-set on the due date they saw lets one extension through."""
    ann = await onboarded(gdpr_bot, "Ann")
    number = await file_erasure(gdpr_bot, ann)
    await gdpr_bot.settle()
    sessions = gdpr_bot.app.sessions
    async with sessions() as first, sessions() as second:
        desks = [Desk(Repositories(s), gdpr_bot.clock, gdpr_bot.pack) for s in (first, second)]
        seen = [await s.get(Request, number) for s in (first, second)]
        assert seen[0] is not None and seen[1] is not None
        assert await desks[1].extension_refusal(seen[1]) is None  # checked before the other
        assert await desks[0].extend(seen[0], 1, "Three archived systems") is Outcome.OK
        desks[1].extension_refusal = AsyncMock(return_value=None)  # type: ignore[method-assign]
        assert await desks[1].extend(seen[1], 2, "Another reason") is Outcome.DECIDED
    async with sessions() as session:
        kinds = list(
            await session.scalars(
                select(RequestMessage.kind).where(RequestMessage.request_id == number)
            )
        )
    assert kinds.count("extension") == 1
    assert (await stored(gdpr_bot, number)).handled_by == 1


async def test_an_erasure_card_lists_the_recipients_to_tell(bot: Harness) -> None:
    ann = await onboarded(bot, "Ann")
    staff = bot.staff("Sam")
    await staff.send(f'/disclose {ann.id} "Tax office" "name" "legal obligation"')
    await staff.send(f'/disclose {ann.id} "Bank" "name" "contract"')
    await file_erasure(bot, ann)
    await bot.settle()
    [card] = bot.cards()
    assert "Сообщить об удалении, исправлении или ограничении" in card.text
    assert "Tax office; Bank" in card.text


async def test_a_decision_stands_when_its_button_cannot_be_answered(bot: Harness) -> None:
    """A press Telegram delivers late cannot be answered ('query is too old'): the decision is
    taken all the same, the user is told and the card shows it (it was committed first)."""
    ann, staff, number, _ = await erasure_on_the_desk(bot)
    bot.fake.fail(
        "answerCallbackQuery",
        description="Bad Request: query is too old and response timeout expired",
        times=2,  # the handler's answer, and the error handler's
    )
    await staff.tap("🙋 Взять")
    await bot.settle()
    request = await stored(bot, number)
    assert request.status == "in_progress" and request.handled_by == staff.id
    assert f"Request #{number} (erasure) is now being handled" in ann.inbox[-1].text


async def test_an_answer_to_staff_stands_when_its_confirmation_fails(bot: Harness) -> None:
    """The person's answer is committed before they are told it was passed on: a failed
    confirmation does not undo it."""
    ann, staff, number, _ = await erasure_on_the_desk(bot)
    await staff.tap("❓ Вопрос")
    prompt = staff.expect("ответьте на это сообщение вопросом по заявлению")
    await staff.reply_to(prompt, "Which account: the app or the website?")
    await bot.settle()
    question = ann.inbox[-1]
    bot.fake.fail("sendMessage", chat_id=ann.id, status=500, description="Internal Server Error")
    await ann.reply_to(question, "The app")
    await bot.settle()
    assert (await stored(bot, number)).status != "waiting_user"
    assert any("Ann по заявлению №1:\nThe app" in e.text for e in bot.fake.events)
