"""Storage limitation: idle accounts with nothing open and no consent are erased once a day;
old pseudonymous erasure records are deleted; staff see the counts in the daily list."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.core.clock import FrozenClock
from storage.models import ErasureRecord, User
from storage.repositories import UserRepository
from tests.kit import Harness
from tests.test_campaigns import subscriber
from tests.test_consents import onboarded
from tests.test_requests import file_erasure


async def user_ids(bot: Harness) -> set[int]:
    async with bot.app.sessions() as session:
        return set(await session.scalars(select(User.id)))


async def test_the_retention_job_erases_only_the_inactive(bot: Harness, clock: FrozenClock) -> None:
    await bot.app.reminders.stop()  # the test runs the scheduler's checks itself
    ann = await onboarded(bot, "Ann")  # idle, nothing open, no consent: erased
    boris = await onboarded(bot, "Борис", lang="ru")  # the same, told in Russian
    carl = await subscriber(bot, "Carl")  # a consent on: kept
    dora = await onboarded(bot, "Dora")
    await file_erasure(bot, dora)  # an open request: kept
    eve = await onboarded(bot, "Eve")
    async with bot.app.sessions() as session:  # an old pseudonymous record, and a recent one
        session.add(ErasureRecord(pseudonym="p" * 64, kind="request", at=clock.now(), detail="{}"))
        old = clock.now() - timedelta(days=1100)
        session.add(ErasureRecord(pseudonym="q" * 64, kind="request", at=old, detail="{}"))
        await session.commit()

    clock.advance(timedelta(days=700))
    await eve.send("/help")  # Eve was here 30 days before the run: kept
    clock.advance(timedelta(days=31))  # 731 days after the others' last interaction
    clock.set(clock.now().replace(hour=6, minute=0))  # 09:00 in Minsk
    counts = await bot.app.reminders.retention.run(bot.app.bot)
    assert counts is not None and (counts.erased, counts.records) == (2, 1)
    assert await user_ids(bot) == {carl.id, dora.id, eve.id}
    assert "your data is erased now" in ann.inbox[-1].text
    assert "ваши данные сейчас удаляются" in boris.inbox[-1].text
    async with bot.app.sessions() as session:
        kept = await session.scalar(select(func.count()).select_from(ErasureRecord))
    assert kept == 1 + 2  # the recent record and the two new erasures
    assert await bot.app.reminders.retention.run(bot.app.bot) is None  # claimed for today

    assert await bot.app.reminders.tick()
    await bot.settle()
    daily = bot.fake.events[-1].text
    assert "Ограничение хранения сегодня: удалено неактивных учётных записей — 2" in daily


async def test_a_person_who_comes_back_after_the_idle_list_was_read_is_kept(
    bot: Harness, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list of idle people is read once; each erasure checks again (compare-and-set), so
    one who came back meanwhile (on this or another instance) is not erased."""
    await bot.app.reminders.stop()  # the test runs the scheduler's checks itself
    ann = await onboarded(bot, "Ann")
    ben = await onboarded(bot, "Ben")
    clock.advance(timedelta(days=731))
    clock.set(clock.now().replace(hour=6, minute=0))
    idle = UserRepository.idle

    async def read_then_ann_comes_back(self, *args):  # type: ignore[no-untyped-def]
        found = await idle(self, *args)
        await ann.send("/help")  # after the read, before her erasure
        return found

    monkeypatch.setattr(UserRepository, "idle", read_then_ann_comes_back)
    counts = await bot.app.reminders.retention.run(bot.app.bot)
    assert counts is not None and counts.erased == 1
    assert await user_ids(bot) == {ann.id}
    assert "your data is erased now" in ben.inbox[-1].text
