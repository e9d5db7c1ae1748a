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


async def test_the_admin_groups_lane_stays_in_order_across_instances(
    pair: tuple[Harness, Harness],
) -> None:
    first, second = pair
    release = first.fake.hold(ADMIN_CHAT_ID)  # the admin group answers slowly
    await file_access(first, "Ann")
    await wait_until(lambda: ADMIN_CHAT_ID in first.fake.held)  # Ann's card is on its way
    await file_access(second, "Bob")
    await second.app.outbox.run_once(second.app.bot)  # the second instance's worker tries
    await asyncio.sleep(1.5)  # and so do both background workers
    # Bob's card waits for Ann's, whichever instance holds it: nobody overtakes.
    assert sends_to(first.fake, ADMIN_CHAT_ID) == 1
    release.set()
    await wait_until(lambda: len(first.cards()) == 2)
    await first.settle()
    await second.settle()
    numbers = [re.search(r"[#№](\d+)", card.text).group(1) for card in first.cards()]  # type: ignore[union-attr]
    assert numbers == ["1", "2"]  # once each, in order


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
