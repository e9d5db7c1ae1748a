"""Two instances of the bot on one database and one Redis (TEST_REDIS_URL; the database is the
suite's engine): one user's updates are serialised across them, and a change of the admin
group's membership seen by one instance reaches the other's staff cache."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import RedisEventIsolation

from bot.core.clock import FrozenClock
from bot.service.shared_redis import connect
from bot.telegram.middlewares import IsolationMiddleware
from storage.repositories import Repositories
from tests.engines import TEST_REDIS_URL
from tests.fake_telegram import FakeTelegram
from tests.kit import ADMIN_CHAT_ID, Harness

pytestmark = pytest.mark.skipif(TEST_REDIS_URL is None, reason="needs TEST_REDIS_URL")


@pytest.fixture
async def pair(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[tuple[Harness, Harness]]:
    first = await Harness(fake, tmp_path, clock=clock, redis_url=TEST_REDIS_URL).start()
    second = await Harness(fake, tmp_path, clock=clock, redis_url=TEST_REDIS_URL).start()
    try:
        yield first, second
    finally:
        await second.stop()
        await first.stop()


async def is_staff(harness: Harness, user_id: int) -> bool:
    async with harness.app.sessions() as session:
        return await harness.app.staff.is_staff(harness.app.bot, user_id, Repositories(session))


def isolation_of(harness: Harness) -> object:
    handlers = harness.app.dispatcher.update.outer_middleware
    return next(m.isolation for m in handlers if isinstance(m, IsolationMiddleware))


def calls_to(fake: FakeTelegram, chat_id: int) -> int:
    return sum(1 for method, params in fake.calls if str(params.get("chat_id")) == str(chat_id))


async def test_one_users_updates_never_interleave_across_instances(
    pair: tuple[Harness, Harness],
) -> None:
    first, second = pair
    assert isinstance(isolation_of(first), RedisEventIsolation)
    ann = first.user("Ann")
    await ann.send("/start")
    await ann.tap("16 or older")
    on_second = second.user("Ann", user_id=ann.id)

    release = first.fake.hold(ann.id)  # the first instance's answer hangs mid-update
    busy = asyncio.create_task(ann.send("/privacy"))
    async with asyncio.timeout(10):
        while ann.id not in first.fake.held:  # noqa: ASYNC110 - set by the fake server
            await asyncio.sleep(0.01)
    before = calls_to(first.fake, ann.id)
    other = asyncio.create_task(on_second.send("/help"))
    await asyncio.sleep(1.0)
    # The second instance waits for Ann's lock instead of answering in between.
    assert calls_to(first.fake, ann.id) == before
    assert not other.done()
    release.set()
    await asyncio.wait_for(asyncio.gather(busy, other), 20)
    texts = [e.text for e in ann.inbox]
    notice = max(i for i, t in enumerate(texts) if "Privacy notice" in t)
    help_ = max(i for i, t in enumerate(texts) if "/rights" in t)
    assert notice < help_  # handled one after the other, in order


async def test_a_membership_change_reaches_every_instances_staff_cache(
    pair: tuple[Harness, Harness],
) -> None:
    first, second = pair
    sam = first.staff("Sam")
    for harness in pair:  # both instances have Sam cached as staff
        assert await is_staff(harness, sam.id)
    first.fake.members[(ADMIN_CHAT_ID, sam.id)] = "member"  # demoted
    await first.feed(
        {
            "chat_member": {
                "chat": first.fake.chats[ADMIN_CHAT_ID],
                "from": {"id": 1, "is_bot": False, "first_name": "Owner"},
                "date": 0,
                "old_chat_member": {"status": "member", "user": sam.as_user()},
                "new_chat_member": {"status": "member", "user": sam.as_user()},
            }
        }
    )
    # The update reached the first instance only; the second refetches all the same.
    assert not await is_staff(second, sam.id)
    assert not await is_staff(first, sam.id)


async def test_an_update_that_outlasts_its_lease_is_still_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A lock expires after its lease (a hung instance must not lock a user out for ever); an
    update that took longer keeps its result, and the late release is only logged."""
    assert TEST_REDIS_URL is not None
    redis, isolation = connect(TEST_REDIS_URL, lease=1)
    key = StorageKey(bot_id=1, chat_id=7, user_id=7)
    try:
        async with isolation.lock(key):
            await asyncio.sleep(1.3)  # the lock expired meanwhile
        assert "outlasted its isolation lease (1 s)" in caplog.text
        async with asyncio.timeout(2), isolation.lock(key):  # and it is free for the next
            pass
    finally:
        await redis.aclose()
