"""Two instances on one database share the workers' work without doubling or reordering it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import FrozenClock
from bot.delivery.outbox import LEASE
from storage.enums import OPEN
from storage.models import Delivery
from storage.repositories import Repositories
from tests.engines import ON_POSTGRESQL
from tests.fake_telegram import FakeTelegram
from tests.kit import ADMIN_CHAT_ID, Harness
from tests.test_campaign_pacing import marketing_rules, queue_campaign
from tests.test_campaigns import campaign_messages, start_campaign, subscriber
from tests.test_consents import onboarded
from tests.test_delivery import file_directly


@pytest.fixture
async def pair(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[tuple[Harness, Harness]]:
    first = await Harness(fake, tmp_path, clock=clock).start()
    second = await Harness(fake, tmp_path, clock=clock).start()
    try:
        yield first, second
    finally:
        await second.stop()
        await first.stop()


async def wait_until(condition, seconds: float = 60) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - the effect comes from another task
            await asyncio.sleep(0.02)


def sends_to(fake: FakeTelegram, chat_id: int) -> int:
    return sum(
        1
        for method, params in fake.calls
        if method == "sendMessage" and str(params.get("chat_id")) == str(chat_id)
    )


async def file_access(harness: Harness, name: str) -> None:
    person = await onboarded(harness, name)
    await person.send("/rights")
    await person.tap("🔎 What do you hold about me?")
    await person.tap("✅ Send the request")


async def test_cards_do_not_wait_for_each_other_across_instances(
    pair: tuple[Harness, Harness],
) -> None:
    first, second = pair
    await first.settle()  # what the starts told staff (calendar, pack fields not given) is out
    await second.settle()
    before = sends_to(first.fake, ADMIN_CHAT_ID)
    release = first.fake.hold(ADMIN_CHAT_ID)  # the admin group answers slowly
    await file_access(first, "Ann")
    await wait_until(lambda: ADMIN_CHAT_ID in first.fake.held)  # Ann's card is on its way
    await file_access(second, "Bob")
    # The second instance's worker tries (its pass waits on the held call: run it aside).
    attempt = asyncio.create_task(second.app.outbox.run_once(second.app.bot))
    # Bob's card has a lane of its own: it is on its way too, not waiting for Ann's.
    await wait_until(lambda: sends_to(first.fake, ADMIN_CHAT_ID) == before + 2)
    release.set()
    await attempt
    await wait_until(lambda: len(first.cards()) == 2)
    await first.settle()
    await second.settle()
    numbers = [re.search(r"[#№](\d+)", card.text).group(1) for card in first.cards()]  # type: ignore[union-attr]
    assert len(set(numbers)) == 2  # once each


async def outboxes_stopped(pair: tuple[Harness, Harness]) -> tuple[Harness, datetime]:
    """Both instances' outbox workers stopped (the test claims by hand, nothing races it); the
    first instance and its clock's now."""
    for harness in pair:
        await harness.app.outbox.stop()
    # What the starts queued for staff (the calendar warning, the pack's fields to fill in) is
    # sent first: a worker stopped before it got to them would leave them ahead in the lane.
    await pair[0].app.outbox.drain(pair[0].app.bot)
    return pair[0], pair[0].clock.now()


async def queue_items(pair: tuple[Harness, Harness]) -> list[int]:
    """Two items in the admin group's lane and one in a lane of its own; both instances'
    outbox workers stopped: the test claims by hand, nothing must race it."""
    first, now = await outboxes_stopped(pair)
    async with first.app.sessions() as session:
        repo = Repositories(session)
        items = [
            await repo.outbox.add(kind="to_admin", text="one", now=now),
            await repo.outbox.add(kind="to_admin", text="two", now=now),
            await repo.outbox.add(kind="redact", message_id=5, text="x", now=now),
        ]
        await repo.commit()
    assert items[0].lane == items[1].lane != items[2].lane
    return [item.id for item in items]


async def claim(harness: Harness) -> int | None:
    """One claim by this instance, committed; the item's ID or None."""
    async with harness.app.sessions() as session:
        repo = Repositories(session)
        await never_wait(session)
        item = await repo.outbox.claim(harness.clock.now())
        await repo.commit()
        return None if item is None else item.id


async def never_wait(session: AsyncSession) -> None:
    """PostgreSQL: from here on, a statement of this transaction that would wait for a lock
    another instance holds fails instead. A claim must pass over what another instance is
    claiming, never queue behind it. (SQLite has one writer at a time: nothing to check.)"""
    if ON_POSTGRESQL:
        await session.execute(text("SET LOCAL lock_timeout = '1s'"))


async def mark_sent(harness: Harness, item_id: int) -> None:
    async with harness.app.sessions() as session:
        item = await Repositories(session).outbox.get(item_id)
        assert item is not None
        item.status = "sent"
        await session.commit()


async def test_a_lane_is_sent_one_item_at_a_time_whichever_instance_claims(
    pair: tuple[Harness, Harness],
) -> None:
    first, second = pair
    one, two, other = await queue_items(pair)
    assert await claim(first) == one  # the first instance is sending "one"
    # "two" waits for it, on the other instance too; "one" is nobody else's; another lane
    # does not wait.
    assert await claim(second) == other
    assert await claim(second) is None
    async with first.app.sessions() as session:  # "one" failed for now: retried in a minute
        item = await Repositories(session).outbox.get(one)
        assert item is not None
        item.status, item.next_attempt_at = "pending", first.clock.now() + timedelta(minutes=1)
        await session.commit()
    assert await claim(second) is None  # "two" still waits: "one" goes first
    first.clock.advance(timedelta(minutes=1))
    assert await claim(second) == one  # the retry, by whichever instance
    await mark_sent(second, one)
    assert await claim(first) == two  # the lane moves on
    assert await claim(second) is None


async def test_two_instances_claiming_at_once_take_each_item_once_and_each_lane_in_order(
    pair: tuple[Harness, Harness],
) -> None:
    first, now = await outboxes_stopped(pair)
    async with first.app.sessions() as session:
        repo = Repositories(session)
        for n in range(40):
            await repo.outbox.add(kind="redact", message_id=n % 5, text=str(n), now=now)
        await repo.commit()
    in_flight: set[str] = set()
    taken: list[tuple[str, int]] = []

    async def worker(harness: Harness) -> None:
        for _ in range(50):  # more than enough for 40 items
            async with harness.app.sessions() as session:
                repo = Repositories(session)
                item = await repo.outbox.claim(harness.clock.now())
                await repo.commit()
                if item is None:
                    return
                assert item.lane not in in_flight  # one item of a lane at a time
                in_flight.add(item.lane)
                taken.append((item.lane, item.id))
                await asyncio.sleep(0)  # the other instance claims meanwhile
                item.status = "sent"
                in_flight.discard(item.lane)
                await repo.commit()

    await asyncio.gather(*(worker(harness) for harness in pair))
    assert sorted(i for _, i in taken) == sorted(set(i for _, i in taken))  # each once
    assert len(taken) == 40
    for lane in {lane for lane, _ in taken}:
        ids = [i for each, i in taken if each == lane]
        assert ids == sorted(ids)  # in order


@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite has one writer at a time")
async def test_an_outbox_claim_passes_over_what_another_instance_is_claiming(
    pair: tuple[Harness, Harness],
) -> None:
    """FOR UPDATE SKIP LOCKED: while the first instance's claim of "one" is not committed yet,
    the second neither waits for it nor takes "one", nor "two" behind it in the lane."""
    first, second = pair
    one, two, other = await queue_items(pair)
    async with first.app.sessions() as session:
        repo = Repositories(session)
        item = await repo.outbox.claim(first.clock.now())
        assert item is not None and item.id == one  # locked, not committed
        assert await claim(second) == other
        assert await claim(second) is None
        await repo.commit()
    assert await claim(second) is None  # "one" is being sent: its lane waits
    await mark_sent(first, one)
    assert await claim(second) == two


@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite has one writer at a time")
async def test_the_lease_recovery_passes_over_an_item_whose_outcome_is_being_written(
    pair: tuple[Harness, Harness],
) -> None:
    first, second = pair
    one, _two, _other = await queue_items(pair)
    assert await claim(first) == one
    later = first.clock.now() + LEASE + timedelta(seconds=1)
    async with first.app.sessions() as session:
        item = await Repositories(session).outbox.get(one)
        assert item is not None
        item.status = "sent"  # the first instance is recording the outcome, long after
        await session.flush()
        async with second.app.sessions() as other_session:
            await never_wait(other_session)
            assert await Repositories(other_session).outbox.recover(later) == 0
            await other_session.commit()
        await session.commit()
    async with second.app.sessions() as session:
        item = await Repositories(session).outbox.get(one)
        assert item is not None and (item.status, item.repeated) == ("sent", False)
        assert await Repositories(session).outbox.recover(later) == 0


@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite has one writer at a time")
async def test_campaign_claims_of_two_instances_pass_over_each_other(
    pair: tuple[Harness, Harness],
) -> None:
    first, second = pair
    people = [await subscriber(first, name) for name in ("Ann", "Ben", "Cleo", "Dan")]
    await second.app.campaigns.stop()  # its watcher would take the campaign over too
    campaign_id = await queue_campaign(first)
    rules = marketing_rules(first)
    now = first.clock.now()
    async with first.app.sessions() as session:
        mine = await Repositories(session).campaigns.claim(campaign_id, 2, rules, now=now)
        async with second.app.sessions() as other:
            await never_wait(other)
            theirs = await Repositories(other).campaigns.claim(campaign_id, 2, rules, now=now)
            await other.commit()
        await session.commit()
    assert [c.user_id for c in mine.claimed] == [people[0].id, people[1].id]
    assert [c.user_id for c in theirs.claimed] == [people[2].id, people[3].id]


@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite has one writer at a time")
async def test_a_hold_release_being_claimed_elsewhere_is_passed_over(
    pair: tuple[Harness, Harness],
) -> None:
    first, second = pair
    ann = await onboarded(first, "Ann")
    for instance in pair:  # their cards' transactions would hold the row (see test_delivery)
        await instance.app.outbox.stop()
    [number] = await file_directly(first, ann, 1)
    # Ends tomorrow by the bots' clock (their own workers leave it alone); claimed a day later.
    now = first.clock.now() + timedelta(days=2)
    async with first.app.sessions() as session:
        request = await Repositories(session).requests.get(number)
        assert request is not None
        request.status, request.hold_until = "blocked", now - timedelta(days=1)
        await session.commit()
    async with first.app.sessions() as session:
        assert await Repositories(session).requests.claim_release(number, now)
        async with second.app.sessions() as other:
            await never_wait(other)
            assert not await Repositories(other).requests.claim_release(number, now)
            await other.commit()
        await session.commit()
    async with second.app.sessions() as other:
        assert not await Repositories(other).requests.claim_release(number, now)


@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite has one writer at a time")
async def test_a_daily_claim_being_made_elsewhere_is_passed_over(
    pair: tuple[Harness, Harness],
) -> None:
    """The once-a-day (or once-a-version) jobs: a key's first claim (an insert) and a later
    one (an update) by one instance; the other neither waits nor claims too."""
    first, second = pair
    for day in ("2026-01-01", "2026-01-02"):
        async with first.app.sessions() as session:
            assert await Repositories(session).state.claim("job:day", day)
            async with second.app.sessions() as other:
                await never_wait(other)
                assert not await Repositories(other).state.claim("job:day", day)
                await other.commit()
            await session.commit()
        async with second.app.sessions() as other:
            assert not await Repositories(other).state.claim("job:day", day)


@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite has one writer at a time")
async def test_the_retention_job_passes_over_a_person_whose_update_is_in_flight(
    pair: tuple[Harness, Harness],
) -> None:
    first, second = pair
    ann = await onboarded(first, "Ann")
    now = first.clock.now() + timedelta(days=800)
    before = now - timedelta(days=730)
    async with second.app.sessions() as session:
        assert await Repositories(session).users.idle(before, now, OPEN) == [ann.id]
    async with first.app.sessions() as session:
        user = await Repositories(session).users.get(ann.id)
        assert user is not None
        user.language = "ru"  # her update is being handled on the first instance
        await session.flush()
        async with second.app.sessions() as other:
            await never_wait(other)
            assert not await Repositories(other).users.claim_idle(ann.id, before, now, OPEN)
            await other.commit()
        await session.commit()
    async with second.app.sessions() as other:
        assert await Repositories(other).users.claim_idle(ann.id, before, now, OPEN)


@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite serves one process; needs PostgreSQL")
async def test_one_instance_runs_a_campaign_and_another_takes_over_when_it_stops(
    pair: tuple[Harness, Harness],
) -> None:
    first, second = pair
    people = [await subscriber(first, name) for name in ("Ann", "Bob", "Cid")]
    release = first.fake.hold(people[0].id)
    staff = first.staff("Sam")
    await start_campaign(first, staff)  # runs on the first instance
    await wait_until(lambda: people[0].id in first.fake.held)  # mid-call to Ann

    await second.app.campaigns.take_over(second.app.bot)
    await second.app.campaigns.drain()
    # The second instance left it alone: Ann's delivery is still the first's call under way
    # (the second would have marked it uncertain), and nobody got a second copy.
    async with second.app.sessions() as session:
        status = await session.scalar(
            select(Delivery.status).where(Delivery.user_id == people[0].id)
        )
    assert status == "sending"
    assert all(len(campaign_messages(p)) <= 1 for p in people)

    await first.stop()  # the first instance dies mid-call: its lock goes with its connection
    release.set()
    await second.app.campaigns.take_over(second.app.bot)
    await second.app.campaigns.drain()
    for person in people[1:]:
        assert len(campaign_messages(person)) == 1
    assert len(campaign_messages(people[0])) <= 1
    async with second.app.sessions() as session:
        status = await session.scalar(
            select(Delivery.status).where(Delivery.user_id == people[0].id)
        )
    assert status == "uncertain"  # maybe delivered: never sent again
