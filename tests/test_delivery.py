"""The desk never stalls, loses or doubles: lanes, permanent errors, outages, crashes, claims
shared by two full bot instances, compare-and-set decisions, numbers never reused, pages."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.core.policy import RequestType
from bot.delivery.outbox import LEASE, MAX_BACKOFF, backoff
from bot.domain.requests.catalogue import MAX_STAFF_TEXT
from bot.domain.requests.desk import Desk
from bot.domain.requests.desk import RequestOutcome as Outcome
from storage.models import Delivery, ErasureRecord, OutboxItem
from storage.repositories import Repositories
from tests.fake_telegram import MAX_TEXT, Event, FakeTelegram
from tests.kit import ADMIN_CHAT_ID, Harness, Person
from tests.test_campaigns import campaign_messages, start_campaign, subscriber
from tests.test_consents import onboarded
from tests.test_requests import erasure_on_the_desk, file_erasure, stored


def card_numbers(bot: Harness) -> Counter[int]:
    """How many cards were posted for each request number."""
    numbers: Counter[int] = Counter()
    for event in bot.cards():
        head = event.text.split("\n", 2)
        title = next(line for line in head if "№" in line or "#" in line)
        numbers[int(title.split("№" if "№" in title else "#")[1].split()[0])] += 1
    return numbers


async def file_directly(
    bot: Harness,
    person: Person,
    count: int,
    kind: RequestType = RequestType.ERASURE,
    answers: dict[str, str] | None = None,
) -> list[int]:
    """Requests filed through the desk itself (what the flow ends in), for volume."""
    numbers = []
    async with bot.app.sessions() as session:
        repo = Repositories(session)
        desk = Desk(repo, bot.app.clock, bot.pack)
        user = await repo.users.get(person.id)
        assert user is not None
        for _ in range(count):
            request = await desk.file(user, kind, answers or {"reason": "volume"})
            numbers.append(request.id)
    return numbers


async def test_backoff_is_capped_before_it_is_computed() -> None:
    assert backoff(1) == timedelta(seconds=5)
    assert backoff(10_000) == MAX_BACKOFF  # no OverflowError, however long the outage


async def test_a_permanent_error_fails_one_item_and_holds_nothing(bot: Harness) -> None:
    ann = await onboarded(bot, "Ann")
    bot.fake.fail(
        "sendMessage",
        chat_id=ADMIN_CHAT_ID,
        status=400,
        description="Bad Request: message is too long",
    )
    ben = await onboarded(bot, "Ben")
    first = await file_erasure(bot, ann, "first")
    second = await file_erasure(bot, ben, "second")
    await bot.settle()
    assert card_numbers(bot) == {second: 1}  # the next card arrived at once
    async with bot.app.sessions() as session:
        items = list(await session.scalars(select(OutboxItem).order_by(OutboxItem.id)))
    failed = next(i for i in items if i.request_id == first and i.kind == "card")
    assert failed.status == "failed" and failed.attempts == 1  # never retried
    notice = next(e for e in bot.fake.events if "не доставлено" in e.text)
    assert f"заявлению №{first}" in notice.text and f"очереди {failed.id}" in notice.text

    # A message to the user that Telegram refuses for good: staff are told, the card says so.
    staff = bot.staff("Sam")
    [card] = [e for e in bot.cards() if f"№{second}" in e.text]
    bot.fake.fail("sendMessage", chat_id=ben.id, status=400, description="Bad Request: nope")
    await staff.reply_to(card, "A reply the user will not get")
    queued = staff.expect("В очереди")
    await bot.settle()
    assert (
        "Не доставлено пользователю"
        in bot.fake.messages[(ADMIN_CHAT_ID, queued.message_id)]["text"]
    )
    card_now = bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]["text"]
    assert "Не доставлено пользователю сообщений: 1" in card_now
    await staff.reply_to(card, "A reply the user gets")
    await bot.settle()
    assert "A reply the user gets" in ben.inbox[-1].text  # their lane was not held either


async def test_lanes_per_chat_and_card(bot: Harness, clock: FrozenClock) -> None:
    ann = await onboarded(bot, "Ann")
    ben = await onboarded(bot, "Ben")
    staff = bot.staff("Sam")
    one = await file_erasure(bot, ann, "one")
    two = await file_erasure(bot, ben, "two")
    await bot.settle()
    cards = {n: e for e in bot.cards() for n in card_numbers(bot) if f"№{n}" in e.text}
    bot.fake.fail("sendMessage", chat_id=ann.id, status=502, description="Bad Gateway")
    await staff.reply_to(cards[one], "to Ann")
    await staff.reply_to(cards[two], "to Ben")
    await bot.settle()
    assert "to Ben" in ben.inbox[-1].text  # Ann's retry does not hold Ben's lane
    assert not any("to Ann" in e.text for e in ann.inbox)
    clock.advance(timedelta(minutes=1))
    await bot.settle()
    assert "to Ann" in ann.inbox[-1].text


async def test_a_48_hour_outage_then_every_card_arrives(
    bot: Harness, clock: FrozenClock, fake: FakeTelegram
) -> None:
    people = [await onboarded(bot, name) for name in ("Ann", "Ben", "Cleo")]
    fake.fail(
        "sendMessage", chat_id=ADMIN_CHAT_ID, status=502, description="Bad Gateway", times=10**9
    )
    numbers = [await file_erasure(bot, p, f"reason {i}") for i, p in enumerate(people)]
    for _ in range(48):
        clock.advance(timedelta(hours=1))
        await bot.app.outbox.run_once(bot.app.bot)
    assert bot.cards() == []
    fake.failures.clear()  # Telegram is back
    clock.advance(MAX_BACKOFF)
    await bot.settle()
    assert card_numbers(bot) == dict.fromkeys(numbers, 1)


async def test_a_crash_mid_card_delivers_it_again_marked_and_it_keeps_updating(
    bot: Harness, clock: FrozenClock, fake: FakeTelegram
) -> None:
    ann = await onboarded(bot, "Ann")
    staff = bot.staff("Sam")
    release = fake.hold(ADMIN_CHAT_ID)
    number = await file_erasure(bot, ann)
    async with asyncio.timeout(10):
        while ADMIN_CHAT_ID not in fake.held:  # noqa: ASYNC110 - the worker is a background task
            await asyncio.sleep(0.01)
    await bot.restart()  # the process dies while the card is on its way
    release.set()  # ... and Telegram posts it after all
    async with asyncio.timeout(10):
        while not bot.cards():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    await bot.settle()
    assert len(bot.cards()) == 1  # not yet: the interrupted worker might still be at it
    clock.advance(LEASE + timedelta(seconds=1))
    await bot.settle()
    first, second = bot.cards()
    assert "может повторять" in second.text and "может повторять" not in first.text
    assert (await stored(bot, number)).card_message_id == second.message_id
    await staff.tap_data(
        f"v1req:{number}:take", bot.fake.messages[(ADMIN_CHAT_ID, second.message_id)]
    )
    await bot.settle()
    edits = [e for e in fake.events if e.kind == "edit" and e.chat_id == ADMIN_CHAT_ID]
    assert edits and edits[-1].message_id == second.message_id and "в работе" in edits[-1].text
    assert "Your request #" in ann.inbox[-1].text or "#" in ann.inbox[-1].text


@pytest.fixture
async def twin(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock, bot: Harness
) -> AsyncIterator[Harness]:
    """A second full bot instance (dispatcher and workers) on the same database file."""
    other = Harness(fake, tmp_path, clock=clock)
    await other.start()
    yield other
    await other.stop()


def on(harness: Harness, person: Person) -> Person:
    """The same person, writing to another instance."""
    return Person(harness, person.id, person.first_name, person.username, person.lang)


async def test_two_instances_on_one_database_send_nothing_twice(
    bot: Harness, twin: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    staff = bot.staff("Sam")
    people = [await subscriber(bot, f"P{i}") for i in range(8)]
    numbers = []
    for i, person in enumerate(people[:6]):
        numbers.append(await file_erasure(bot, on(twin, person) if i % 2 else person, f"r{i}"))
    release = bot.fake.hold(people[2].id)
    await start_campaign(bot, staff)
    async with asyncio.timeout(10):
        while people[2].id not in bot.fake.held:  # noqa: ASYNC110 - the campaign is a task
            await asyncio.sleep(0.01)
    [campaign_id] = await bot_campaigns(bot)
    twin.app.campaigns.start(twin.app.bot, campaign_id)  # the other instance joins in mid-call
    await asyncio.sleep(0.2)
    release.set()
    for _ in range(3):
        await asyncio.gather(bot.settle(), twin.settle())
    assert card_numbers(bot) == dict.fromkeys(numbers, 1)
    for person in people:
        assert len(campaign_messages(person)) == 1, person.first_name
    async with bot.app.sessions() as session:
        statuses = Counter(
            (
                await session.scalars(
                    select(Delivery.status).where(Delivery.campaign_id == campaign_id)
                )
            ).all()
        )
    assert statuses == {"sent": len(people)}  # none taken from the other instance mid-call
    assert "Traceback" not in caplog.text and "failed" not in caplog.text.lower()


async def bot_campaigns(bot: Harness) -> list[int]:
    from storage.models import Campaign

    async with bot.app.sessions() as session:
        return list(await session.scalars(select(Campaign.id)))


async def test_the_daily_reminder_and_a_hold_release_are_taken_once(
    bot: Harness, twin: Harness, clock: FrozenClock
) -> None:
    for harness in (bot, twin):  # the test runs both instances' checks itself
        await harness.app.reminders.stop()
    ann, staff, number, _ = await erasure_on_the_desk(bot)
    await staff.tap_data(f"v1req:{number}:block", bot.fake.messages[(ADMIN_CHAT_ID, 1)])
    await staff.reply_to(staff.expect("ответьте датой"), "31.12.2026 accounting records")
    await bot.settle()
    clock.set(datetime(2027, 1, 1, 9, 30, tzinfo=bot.pack.zone))
    ticks = await asyncio.gather(bot.app.reminders.tick(), twin.app.reminders.tick())
    assert sorted(ticks) == [False, True]
    released = await asyncio.gather(
        bot.app.erasure.release_holds(bot.app.bot),
        twin.app.erasure.release_holds(twin.app.bot),
    )
    assert sorted(released) == [0, 1]
    assert sum("legal hold on your data has ended" in e.text for e in ann.inbox) == 1


async def test_two_staff_deciding_at_once_give_one_decision(bot: Harness) -> None:
    ann = await onboarded(bot, "Ann")
    sam, kim = bot.staff("Sam"), bot.staff("Kim")
    number = await file_erasure(bot, ann)
    await bot.settle()
    async with bot.app.sessions() as one, bot.app.sessions() as two:
        desks = [Desk(Repositories(s), bot.app.clock, bot.pack) for s in (one, two)]
        seen = [await Repositories(s).requests.get(number) for s in (one, two)]
        await one.commit()
        await two.commit()
        assert seen[0] is not None and seen[1] is not None
        done = await desks[0].take(seen[0], sam.id)
        refused = await desks[1].refuse(seen[1], kim.id, "No", "lawful_grounds")
    assert (done, refused) == (Outcome.OK, Outcome.DECIDED)
    request = await stored(bot, number)
    assert (request.status, request.handled_by) == ("in_progress", sam.id)

    # Through the card: Kim starts a refusal, Sam completes first; Kim is told who decided.
    [number] = await file_directly(
        bot, ann, 1, RequestType.RECTIFICATION, {"field": "other", "value": "x"}
    )
    await bot.settle()
    card = bot.cards()[-1]
    await kim.tap_data(
        f"v1ground:{number}:not_shown_inaccurate",
        bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)],
    )
    prompt = kim.expect("пояснением отказа")
    await sam.tap_data(f"v1req:{number}:done", bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)])
    await kim.reply_to(prompt, "Too late")
    kim.expect(f"уже принято решение (выполнено), сотрудник {sam.id}")
    assert (await stored(bot, number)).status == "done"


async def test_request_numbers_are_never_reused(bot: Harness) -> None:
    _, staff, first, card = await erasure_on_the_desk(bot)
    await staff.tap_data(f"v1req:{first}:done", bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)])
    await bot.settle()
    assert "Данные заявления удалены" in bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]["text"]
    ben = await onboarded(bot, "Ben")
    second = await file_erasure(bot, ben)
    assert second > first
    await bot.settle()
    await staff.tap_data(
        f"v1req:{second}:done", bot.fake.messages[(ADMIN_CHAT_ID, bot.cards()[-1].message_id)]
    )
    async with bot.app.sessions() as session:
        kept = await session.scalars(select(ErasureRecord).where(ErasureRecord.kind == "request"))
        kept_numbers = [json.loads(r.detail)["number"] for r in kept]
    assert sorted(kept_numbers) == [first, second]


async def test_two_hundred_open_requests_page_and_cards_keep_flowing(
    bot: Harness, clock: FrozenClock
) -> None:
    ann = await onboarded(bot, "Ann")
    staff = bot.staff("Sam")
    numbers = await file_directly(bot, ann, 200)
    await bot.settle()
    assert len(bot.cards()) == 200

    await staff.send("/due")
    first = staff.expect("Открытые заявления по сроку: 200 заявлений")
    assert "Страница 1 из 10 · всего 200" in first.text and len(first.text) <= MAX_TEXT
    assert f"№{numbers[0]} " in first.text and f"№{numbers[20]} " not in first.text
    await staff.tap("Далее ›")
    page = bot.fake.messages[(ADMIN_CHAT_ID, first.message_id)]  # edited in place
    assert "Страница 2 из 10" in page["text"] and f"№{numbers[20]} " in page["text"]
    await staff.tap("‹ Назад")
    assert "Страница 1 из 10" in bot.fake.messages[(ADMIN_CHAT_ID, first.message_id)]["text"]

    await bot.app.reminders.stop()  # the test runs the scheduler's check itself
    clock.set(datetime(2026, 11, 24, 9, 30, tzinfo=bot.pack.zone))
    assert await bot.app.reminders.tick()
    another = await file_erasure(bot, await onboarded(bot, "Ben"), "while the list goes out")
    await bot.settle()
    daily = next(e for e in reversed(bot.fake.events) if "по сроку: 20" in e.text)
    assert daily.message_id != first.message_id and len(daily.text) <= MAX_TEXT
    assert "Страница 1 из " in daily.text and daily.markup
    assert card_numbers(bot)[another] == 1

    outsider = bot.staff("Eve", status="member")
    await outsider.tap_data("v1page:due:1", bot.fake.messages[(ADMIN_CHAT_ID, daily.message_id)])


async def test_the_users_request_list_pages(bot: Harness) -> None:
    ann = await onboarded(bot, "Ann")
    numbers = await file_directly(bot, ann, 45)
    await ann.send("/requests")
    listing = ann.expect("Your requests")
    assert "Page 1 of 3 · 45 in all" in listing.text
    assert f"#{numbers[-1]} " in listing.text  # newest first
    await ann.tap("Next ›")
    await ann.tap("Next ›")
    text = bot.fake.messages[(ann.id, listing.message_id)]["text"]
    assert "Page 3 of 3" in text and f"#{numbers[0]} " in text


async def test_long_staff_texts_are_refused_before_anything_is_queued(bot: Harness) -> None:
    ann, staff, number, card = await erasure_on_the_desk(bot)
    await staff.reply_to(card, "x" * 5000)
    staff.expect(f"5000 символов при пределе {MAX_STAFF_TEXT}")
    async with bot.app.sessions() as session:
        queued = list(await session.scalars(select(OutboxItem).where(OutboxItem.user_id == ann.id)))
    assert queued == []
    await staff.reply_to(card, "y" * MAX_STAFF_TEXT)  # the longest allowed reply fits
    await bot.settle()
    assert "y" * 100 in ann.inbox[-1].text
    await staff.tap_data(
        f"v1ground:{number}:lawful_grounds", bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]
    )
    await staff.reply_to(staff.expect("пояснением отказа"), "z" * 1001)
    staff.expect("1001 символ при пределе 1000")  # not "1001 символов"
    assert (await stored(bot, number)).status == "received"


async def test_the_longest_campaign_text_allowed_fits_its_preview(bot: Harness) -> None:
    from handlers.staff.campaigns import MAX_TEXT as CAMPAIGN_LIMIT

    staff = bot.staff("Sam")
    await staff.send("/campaign " + "a" * 5000)
    staff.expect(f"максимум {CAMPAIGN_LIMIT}")
    assert bot.pack.marketing is not None
    opening = max(len(bot.pack.marketing.reason.get(code)) for code in ("ru", "en"))
    await staff.send("/campaign " + "b" * (CAMPAIGN_LIMIT - opening - 2))
    preview = staff.expect("предпросмотр")
    assert len(preview.text) <= MAX_TEXT


async def relayed_erasure(bot: Harness) -> tuple[Person, Person, int, Event, Event]:
    """Ann files an erasure and answers staff's question under its card: (Ann, staff, number,
    card, the relayed answer in the admin group)."""
    ann, staff, number, card = await erasure_on_the_desk(bot)
    await staff.reply_to(card, "Which account?")
    await bot.settle()
    await ann.reply_to(ann.inbox[-1], "The one called Quuxbertina")
    await bot.settle()
    relay = next(e for e in bot.fake.events if "Quuxbertina" in e.text)
    return ann, staff, number, card, relay


async def test_erasure_redacts_cards_from_stored_ids_and_deletes_relays(bot: Harness) -> None:
    ann, staff, number, card, relay = await relayed_erasure(bot)
    bot.fake.fail("editMessageText", chat_id=ADMIN_CHAT_ID, status=502, times=10)
    bot.fake.fail("deleteMessage", chat_id=ADMIN_CHAT_ID, status=502, times=10)
    await staff.tap_data(
        f"v1req:{number}:done", bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]
    )
    assert "Your erasure request is done" in ann.inbox[-1].text
    await bot.restart()  # what is to be redacted or deleted is in the database, not in memory
    bot.fake.failures.clear()
    bot.app.clock.advance(MAX_BACKOFF)  # type: ignore[attr-defined]
    await bot.settle()
    text = bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]["text"]
    assert "Данные заявления удалены" in text and "Quuxbertina" not in text
    assert (ADMIN_CHAT_ID, relay.message_id) not in bot.fake.messages  # the relay is deleted


async def test_the_outbox_stops_even_when_woken_just_before(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wake() right before stop() (a test, or a handler, then shutdown) ends the worker: on
    Python 3.11 asyncio.wait_for returned the woken result and dropped the cancellation, and
    stop() waited for ever (the suite hung now and then on the tests that stop the worker)."""
    outbox = bot.app.outbox
    await outbox.stop()
    passes: list[int] = []
    waiting = asyncio.Event()

    async def one_pass(_bot: object) -> int:
        passes.append(1)
        waiting.set()  # the worker goes on to wait for the next wake() without yielding
        return 0

    monkeypatch.setattr(outbox, "run_once", one_pass)
    await outbox.start(bot.app.bot)
    await waiting.wait()
    outbox.wake()
    async with asyncio.timeout(10):  # a guard only: the stop returns at once
        await outbox.stop()
    assert passes == [1]


class Crash(BaseException):
    """The process dies here: nothing after this point runs, no handler catches it."""


BEFORE_CLAIM_COMMIT = "before the claim is committed"
BEFORE_CALL = "after the claim, before the call"
BEFORE_COMMIT = "after the call, before its outcome is committed"


def crash_at(monkeypatch: pytest.MonkeyPatch, point: str, lane_prefix: str) -> None:
    """Make the outbox die at `point` the first time it handles an item of these lanes."""
    from bot.delivery.outbox import Outbox
    from storage.repositories import OutboxRepository

    claim, deliver = OutboxRepository.claim, Outbox._deliver
    fired: list[bool] = []

    def mine(lane: str) -> bool:
        if fired or not lane.startswith(lane_prefix):
            return False
        fired.append(True)
        return True

    async def claim_then_die(self, now, **kwargs):  # type: ignore[no-untyped-def]
        item = await claim(self, now, **kwargs)
        if item is not None and point == BEFORE_CLAIM_COMMIT and mine(item.lane):
            raise Crash
        return item

    async def deliver_and_die(self, bot, repo, item, request):  # type: ignore[no-untyped-def]
        if point == BEFORE_CALL and mine(item.lane):
            raise Crash
        await deliver(self, bot, repo, item, request)
        if point == BEFORE_COMMIT and mine(item.lane):
            raise Crash

    monkeypatch.setattr(OutboxRepository, "claim", claim_then_die)
    monkeypatch.setattr(Outbox, "_deliver", deliver_and_die)


async def crash_and_restart(
    bot: Harness, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(Crash):
        await bot.app.outbox.run_once(bot.app.bot)
    monkeypatch.undo()
    await bot.restart()
    clock.advance(LEASE + timedelta(seconds=1))  # the lease of the dead worker's claim ends
    await bot.settle()


@pytest.mark.parametrize("point", [BEFORE_CLAIM_COMMIT, BEFORE_CALL, BEFORE_COMMIT])
async def test_a_crash_at_each_point_of_a_card_delivers_it_at_least_once_marked(
    bot: Harness, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    ann = await onboarded(bot, "Ann")
    staff = bot.staff("Sam")
    await bot.app.outbox.stop()  # the test drives the worker
    crash_at(monkeypatch, point, "card:")
    number = await file_erasure(bot, ann)
    await crash_and_restart(bot, clock, monkeypatch)
    cards = bot.cards()
    if point == BEFORE_COMMIT:  # Telegram had it: it goes again, marked as a possible repeat
        first, card = cards
        assert "может повторять" not in first.text
    else:
        [card] = cards
    marked = "может повторять" in card.text
    assert marked is (point != BEFORE_CLAIM_COMMIT)  # a claim never committed was never taken
    assert (await stored(bot, number)).card_message_id == card.message_id
    await staff.tap_data(
        f"v1req:{number}:take", bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]
    )
    await bot.settle()
    assert "в работе" in bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]["text"]


@pytest.mark.parametrize("point", [BEFORE_CLAIM_COMMIT, BEFORE_CALL, BEFORE_COMMIT])
async def test_a_crash_at_each_point_of_a_reply_delivers_it_at_least_once_marked(
    bot: Harness, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    ann, staff, _, card = await erasure_on_the_desk(bot)
    await bot.app.outbox.stop()
    crash_at(monkeypatch, point, "chat:")
    await staff.reply_to(card, "Which account is it?")
    queued = staff.expect("В очереди")
    await crash_and_restart(bot, clock, monkeypatch)
    got = [e.text for e in ann.inbox if "Which account is it?" in e.text]
    repeat = "This message may repeat an earlier one"  # in the user's language
    if point == BEFORE_COMMIT:
        assert len(got) == 2 and repeat not in got[0] and repeat in got[1]
    else:
        assert len(got) == 1 and (repeat in got[0]) is (point == BEFORE_CALL)
    confirmation = bot.fake.messages[(ADMIN_CHAT_ID, queued.message_id)]["text"]
    assert "Отправлено пользователю" in confirmation  # only now that the user has it


@pytest.mark.parametrize(
    ("status", "description", "retry_after", "permanent"),
    [
        (400, "Bad Request: message is too long", None, True),
        (400, "Bad Request: can't parse entities", None, True),
        (403, "Forbidden: bot was kicked from the supergroup chat", None, False),  # waits
        (502, "Bad Gateway", None, False),
        (500, "Internal Server Error", None, False),
        (429, "Too Many Requests: retry after 7", 7, False),
    ],
)
async def test_errors_are_decided_permanent_at_once_transient_retried(
    bot: Harness,
    caplog: pytest.LogCaptureFixture,
    status: int,
    description: str,
    retry_after: int | None,
    permanent: bool,
) -> None:
    await bot.settle()  # what the start told staff (the calendar warning) is out of the lane
    await bot.app.outbox.stop()
    now = bot.app.clock.now()
    async with bot.app.sessions() as session:
        repo = Repositories(session)
        first = (await repo.outbox.add(kind="to_admin", text="first", now=now)).id
        await repo.outbox.add(kind="to_admin", text="second, same lane", now=now)
        await repo.commit()
    bot.fake.fail(
        "sendMessage",
        chat_id=ADMIN_CHAT_ID,
        status=status,
        description=description,
        retry_after=retry_after,
    )
    caplog.set_level("INFO")
    await bot.app.outbox.drain(bot.app.bot)
    async with bot.app.sessions() as session:
        item = await Repositories(session).outbox.get(first)
    assert item is not None and item.attempts == 1
    texts = [e.text for e in bot.fake.events if e.chat_id == ADMIN_CHAT_ID]
    if permanent:
        assert item.status == "failed"
        assert "second, same lane" in texts  # the failed item holds nothing
        assert any(f"Сообщение {first} из очереди не доставлено" in t for t in texts)
        assert f"Outbox item {first} (to_admin) failed for good" in caplog.text
    else:
        assert item.status == "pending" and item.next_attempt_at > now
        assert "second, same lane" not in texts  # order within the lane is kept


async def test_a_hold_release_is_claimed_by_compare_and_set(
    bot: Harness, clock: FrozenClock
) -> None:
    """Two workers that both read the expired hold: only the first claim wins (the erasure
    that follows runs in the winner's transaction)."""
    ann = await onboarded(bot, "Ann")
    # Filing's commit wakes the outbox, whose card transaction would hold the request's row
    # (FOR UPDATE SKIP LOCKED passes over it on PostgreSQL): the card is not what is tested.
    await bot.app.outbox.stop()
    [number] = await file_directly(bot, ann, 1)
    # The hold ends tomorrow by the bot's clock, so its own worker leaves it alone; the two
    # workers here look from the day after.
    later = clock.now() + timedelta(days=2)
    async with bot.app.sessions() as session:
        request = await Repositories(session).requests.get(number)
        assert request is not None
        request.status, request.hold_until = "blocked", clock.now() + timedelta(days=1)
        await session.commit()
    async with bot.app.sessions() as one, bot.app.sessions() as two:
        seen = [await Repositories(s).requests.expired_holds(later) for s in (one, two)]
        assert [len(s) for s in seen] == [1, 1]
        await two.commit()  # SQLite: end the read so the second can write after the first
        assert await Repositories(one).requests.claim_release(number, later)
        await one.commit()
        assert not await Repositories(two).requests.claim_release(number, later)


async def test_a_card_posted_while_its_person_is_erased_is_removed(
    bot: Harness, fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    """The erasure redacts the cards it knows of; one on its way at that moment is recorded
    by nobody, so the outbox deletes it once it finds the request gone."""
    ann, bob = await onboarded(bot, "Ann"), await onboarded(bot, "Bob")
    release = fake.hold(ADMIN_CHAT_ID)
    await file_erasure(bot, ann)
    async with asyncio.timeout(10):
        while ADMIN_CHAT_ID not in fake.held:  # noqa: ASYNC110 - the worker is a background task
            await asyncio.sleep(0.01)
    erased = bot.app.erasure.execute(bot.app.bot, ann.id, cause="t", notice="requests.erased")
    assert await erased
    release.set()
    await bot.settle()
    [posted] = bot.cards()
    assert "Ann" in posted.text  # Telegram did post it ...
    assert (ADMIN_CHAT_ID, posted.message_id) not in fake.messages  # ... and it is gone
    assert "Outbox pass failed" not in caplog.text
    async with bot.app.sessions() as session:
        left = (await session.scalars(select(OutboxItem.status))).all()
    assert set(left) <= {"sent"}
    await file_erasure(bot, bob)  # the queue goes on
    await bot.settle()
    assert [c.text for c in bot.cards() if "Bob" in c.text]


async def test_a_card_with_many_disclosures_still_fits_one_message(bot: Harness) -> None:
    ann = await onboarded(bot, "Ann")
    now = bot.app.clock.now()
    async with bot.app.sessions() as session:
        repo = Repositories(session)
        for i in range(40):  # each recipient may be 200 characters; their number is unbounded
            await repo.disclosures.add(
                user_id=ann.id, at=now, recipient=f"Recipient {i:02d} " + "r" * 180,
                data="name", legal_basis="law", staff_id=1,
            )  # fmt: skip
        await repo.commit()
    await file_erasure(bot, ann)
    await bot.settle()
    [card] = bot.cards()  # posted, not failed as "message is too long"
    assert len(card.text) <= MAX_TEXT
    assert "Recipient 00" in card.text and "Recipient 39" not in card.text
    assert "… и ещё " in card.text  # how many were left out is said, nothing silently cut


async def test_many_open_breaches_still_fit_the_due_list(bot: Harness) -> None:
    staff = bot.staff("Sam")
    now = bot.app.clock.now()
    async with bot.app.sessions() as session:
        repo = Repositories(session)
        for _ in range(120):
            await repo.breaches.add(
                created_at=now, created_by=staff.id, known_at=now, what="w", categories="c",
                measures="m", consequences="c", affected="all",
                authority_due_at=now + timedelta(hours=72),
            )  # fmt: skip
        await repo.commit()
    await staff.send("/due")
    listing = staff.expect("Нарушения")
    assert len(listing.text) <= MAX_TEXT and "… и ещё 105: /breaches" in listing.text


async def test_an_erased_persons_relayed_text_too_old_to_delete_is_blanked(bot: Harness) -> None:
    _, staff, number, card, relay = await relayed_erasure(bot)
    # The group is unreachable for a while; then Telegram lets a bot delete a message only
    # within 48 hours of its sending.
    bot.fake.fail("deleteMessage", chat_id=ADMIN_CHAT_ID, description="Bad Request: chat not found")
    bot.fake.fail(
        "deleteMessage", chat_id=ADMIN_CHAT_ID, description="Bad Request: message can't be deleted"
    )
    await staff.tap_data(
        f"v1req:{number}:done", bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]
    )
    await bot.settle()
    assert "Quuxbertina" in bot.fake.messages[(ADMIN_CHAT_ID, relay.message_id)]["text"]
    bot.app.clock.advance(MAX_BACKOFF)  # type: ignore[attr-defined]
    await bot.settle()
    blanked = bot.fake.messages[(ADMIN_CHAT_ID, relay.message_id)]["text"]
    assert "Quuxbertina" not in blanked and "Данные заявления удалены" in blanked
    assert not any("Удалите их вручную" in e.text for e in bot.fake.events)
