"""Two instances on one database share the workers' work without doubling or reordering it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.clock import FrozenClock
from storage.models import Delivery
from storage.repositories import Repositories
from tests.engines import ON_POSTGRESQL
from tests.fake_telegram import FakeTelegram
from tests.kit import ADMIN_CHAT_ID, Harness
from tests.test_campaigns import campaign_messages, start_campaign, subscriber
from tests.test_consents import onboarded


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
    release = first.fake.hold(ADMIN_CHAT_ID)  # the admin group answers slowly
    await file_access(first, "Ann")
    await wait_until(lambda: ADMIN_CHAT_ID in first.fake.held)  # Ann's card is on its way
    await file_access(second, "Bob")
    # The second instance's worker tries (its pass waits on the held call: run it aside).
    attempt = asyncio.create_task(second.app.outbox.run_once(second.app.bot))
    # Bob's card has a lane of its own: it is on its way too, not waiting for Ann's.
    await wait_until(lambda: sends_to(first.fake, ADMIN_CHAT_ID) == 2)
    release.set()
    await attempt
    await wait_until(lambda: len(first.cards()) == 2)
    await first.settle()
    await second.settle()
    numbers = [re.search(r"[#№](\d+)", card.text).group(1) for card in first.cards()]  # type: ignore[union-attr]
    assert len(set(numbers)) == 2  # once each


async def test_a_lane_is_sent_one_item_at_a_time_whichever_instance_claims(
    pair: tuple[Harness, Harness],
) -> None:
    first, second = pair
    for harness in pair:  # the test claims by hand: the instances' own workers must not race it
        await harness.app.outbox.stop()
    now = first.clock.now()
    async with first.app.sessions() as session:
        repo = Repositories(session)
        ids = [
            (await repo.outbox.add(kind="to_admin", text="one", now=now)).id,
            (await repo.outbox.add(kind="to_admin", text="two", now=now)).id,
            (await repo.outbox.add(kind="redact", message_id=5, text="x", now=now)).id,
        ]
        await repo.commit()
    lanes = {}
    async with first.app.sessions() as session:
        for item in await Repositories(session).outbox.unfinished():
            lanes[item.id] = item.lane
    assert lanes[ids[0]] == lanes[ids[1]] != lanes[ids[2]]

    async def claim(harness: Harness, item_id: int) -> bool:
        async with harness.app.sessions() as session:
            repo = Repositories(session)
            won = await repo.outbox.claim(item_id, lanes[item_id], now)
            await repo.commit()
            return won

    assert await claim(first, ids[0])  # the first instance is sending "one"
    assert not await claim(second, ids[1])  # "two" waits for it, on the other instance too
    assert not await claim(second, ids[0])  # and "one" is nobody else's
    assert await claim(second, ids[2])  # another lane does not wait
    async with first.app.sessions() as session:
        item = await Repositories(session).outbox.get(ids[0])
        assert item is not None
        item.status = "sent"
        await session.commit()
    assert not await claim(second, ids[0])  # a sent item is nobody's, whatever one last read
    assert await claim(second, ids[1])  # the lane moves on


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
