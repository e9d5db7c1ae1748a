"""Storage limitation (GDPR art. 5(1)(e); Law 99-Z art. 4; Telegram's bot terms): once a day,
people with no open request, no legal hold or restriction, no consent on and no interaction for
the pack's period are erased with the same erasure as a request; pseudonymous erasure records
older than the pack's period are deleted; the data collected from the operator's systems for an
access answer is deleted `retention.access_data_days` after its delivery (only the counts
remain). The day is claimed atomically (one process runs it) and the counts go into the daily
list. With the operator's systems connected, the erasure runs through them first (jobs without
a request), and the bot's own erasure follows once they are done; a manual or not connected
system has no card to be ticked on, so it takes no part."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiogram import Bot
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import Clock
from bot.core.policy import PolicyPack, RequestType
from bot.domain.erasure import ErasureService
from bot.domain.requests.carrying import Connected, add_jobs
from storage.enums import OPEN
from storage.repositories import Repositories

log = logging.getLogger(__name__)
CLAIM_KEY = "retention:last_day"
COUNTS_KEY = "retention:counts"  # "<day>|<erased>|<records deleted>"


@dataclass(frozen=True)
class RetentionCounts:
    day: str
    erased: int
    records: int

    def encode(self) -> str:
        return f"{self.day}|{self.erased}|{self.records}"

    @classmethod
    def decode(cls, value: str | None) -> RetentionCounts | None:
        if not value or value.count("|") != 2:
            return None
        day, erased, records = value.split("|")
        return cls(day, int(erased), int(records))


class Retention:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        pack: PolicyPack,
        erasure: ErasureService,
        connected: Connected | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._pack = pack
        self._erasure = erasure
        connected = connected or Connected()
        # The operator's systems the erasure runs through first (request-less jobs); the bot's
        # own erasure follows when they are done (bot.domain.requests.finishing).
        self._systems = [s for s in pack.systems if connected.reaches(s)]
        self._connected = connected

    async def run(self, bot: Bot) -> RetentionCounts | None:
        """Today's run, unless another process (or an earlier tick) has claimed today."""
        now = self._clock.now()
        day = now.astimezone(self._pack.zone).date().isoformat()
        rules = self._pack.retention
        async with self._sessions() as session:
            repo = Repositories(session)
            if not await repo.state.claim(CLAIM_KEY, day):
                await session.rollback()
                return None
            await repo.commit()  # today is claimed before the erasures, each its own transaction
            before = now - timedelta(days=rules.inactive_days)
            idle = await repo.users.idle(before, now, OPEN)
        erased = 0
        for user_id in idle:
            if self._systems:
                erased += await self._through_systems(user_id, before, now)
                continue
            key = await self._erasure.execute(
                bot,
                user_id,
                cause="storage limitation",
                notice="retention.erased",
                # Still idle when the erasure runs (they may have come back meanwhile), and not
                # being written by another instance (their update in flight).
                claim=lambda repo, uid=user_id: repo.users.claim_idle(uid, before, now, OPEN),
                compact=False,
            )
            erased += key is not None
        async with self._sessions() as session:
            repo = Repositories(session)
            cutoff = now - timedelta(days=rules.erasure_records_days)
            records = await repo.erasure.delete_records_before(cutoff)
            purged = await repo.jobs.purge_due(now)
            counts = RetentionCounts(day, erased, records)
            if erased or records:  # the daily list reports them; nothing done, nothing written
                await repo.state.set(COUNTS_KEY, counts.encode())
            await repo.commit()  # the worker's own session: the deletions and today's counts
        await self._erasure.compact_if_pending()
        if erased or records:
            log.info("Storage limitation: %s erased, %s erasure records deleted", erased, records)
        if purged:
            log.info("Storage limitation: collected data of %s system jobs deleted", purged)
        return counts

    async def _through_systems(self, user_id: int, before: datetime, now: datetime) -> bool:
        """An idle person's erasure starts in the operator's connected systems: one job each
        (no request), claimed with the person still idle and not already under way. True when
        started now."""
        async with self._sessions() as session:
            repo = Repositories(session)
            started = any(job.request_id is None for job in await repo.jobs.of_user(user_id))
            if started or not await repo.users.claim_idle(user_id, before, now, OPEN):
                await session.rollback()
                return False
            await add_jobs(
                repo,
                self._systems,
                self._connected,
                user_id=user_id,
                request_id=None,
                action=RequestType.ERASURE,
                now=now,
            )
            await repo.commit()  # the claim and the jobs together; the commit wakes the worker
        return True
