"""The systems' worker: runs the jobs that carry requests out in the operator's systems, started
and stopped with the app like the outbox, woken by a commit that added or reopened jobs
(`on_jobs_commit`) and by a periodic pass.

One pass: the lease recovery (at start, then every half lease), then claims into free slots (at
most `PARALLEL` jobs at once, one per system, never a system this process has no connector for),
each job run in a task of its own, then the finishing pass (`bot.domain.requests.finishing`).
A slow or failing system holds only its own slot: other systems' jobs and other requests go on.

The guarantees, step by step:
- claim (`pending` -> `running`, one conditional UPDATE): at most once per claim; two
  instances never hold the same job;
- the system's action: AT LEAST ONCE. A worker that dies between the claim and the record
  leaves the job `running`; after `LEASE` it is pending again and runs again (a worker that
  is stopped puts it back at once). Every action is
  idempotent (bot.domain.systems), so the repeat changes nothing more;
- the record (`finish`, `wait_for_callback`, `retry_later`: compare-and-set on this worker's
  claim): at most once; a worker whose claim was recovered meanwhile records nothing;
- the staff notice of a job given up: at most once per give-up (queued with the move);
- the finishing pass: at most once per request (compare-and-set on its status), at least once
  overall, as the pass runs after every change and periodically.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from aiogram import Bot
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import Clock
from bot.core.i18n import translator
from bot.core.policy import PolicyPack, RequestType
from bot.core.tasks import cancel_and_wait
from bot.delivery.systems.registry import Registry
from bot.domain.requests.catalogue import details_of
from bot.domain.requests.finishing import Finisher
from bot.domain.systems import Accepted, Correction, Done, Failed, Outcome, Subject, Work, done_json
from storage.enums import JobStatus, MessageKind, OutboxKind
from storage.models_systems import SystemJob
from storage.repositories import Repositories

log = logging.getLogger(__name__)
JOB_TIMEOUT = 120.0  # seconds one system's action may take
LEASE = timedelta(minutes=10)  # a job `running` this long after its claim was cut by a crash
BASE_DELAY = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
MAX_EXPONENT = 8  # 30 s * 2**7 already exceeds the cap
MAX_ATTEMPTS = 10  # then the job is failed: staff see why and may retry
PARALLEL = 4
POLL_SECONDS = 5.0


def backoff(attempts: int) -> timedelta:
    exponent = min(max(attempts - 1, 0), MAX_EXPONENT)
    return min(BASE_DELAY * 2**exponent, MAX_BACKOFF)


@dataclass(frozen=True)
class Claimed:
    """A job this worker claimed: what the record compares against, and its work."""

    job_id: int
    system_id: str
    request_id: int | None
    claimed_at: datetime
    attempts: int
    work: Work


class SystemsWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        pack: PolicyPack,
        registry: Registry,
        finisher: Finisher,
        staff_locale: str,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._pack = pack
        self._registry = registry
        self.finisher = finisher
        self._t = translator(staff_locale)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Task[None]] = {}  # by system id: one job each
        self._recovered_at: datetime | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, bot: Bot) -> None:
        if self._pack.systems:
            self._task = asyncio.create_task(self._loop(bot), name="systems")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task, *self._running.values())
        self._running.clear()

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self, bot: Bot) -> None:
        while True:
            try:
                await self._pass(bot)
            except Exception:  # the worker must survive anything and try again
                log.exception("Systems pass failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await self._wake.wait()
            self._wake.clear()

    async def _pass(self, bot: Bot) -> int:
        """Recover, fill the free slots with claimed jobs (not waited for), finish what is
        ready. Returns how many jobs were claimed."""
        now = self._clock.now()
        if self._recovered_at is None or now - self._recovered_at >= LEASE / 2:
            await self.recover()
        claimed = 0
        while len(self._running) < PARALLEL:
            job = await self.claim()
            if job is None:
                break
            claimed += 1
            task = asyncio.create_task(self._run_and_wake(bot, job), name="system-job")
            self._running[job.system_id] = task
        await self.finisher.run(bot)
        return claimed

    async def _run_and_wake(self, bot: Bot, job: Claimed) -> None:
        try:
            await self.run(job)
        except Exception:
            log.exception("Recording system %s's job %s failed", job.system_id, job.job_id)
        finally:
            self._running.pop(job.system_id, None)
            self.wake()  # the slot is free, and the request may be finished

    async def drain(self, bot: Bot) -> None:
        """Run everything that is due now and finish what is ready (tests; shutdown)."""
        while True:
            claimed = await self._pass(bot)
            running = list(self._running.values())
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            if not claimed and not running:
                await self.finisher.run(bot)
                return

    # --- one job ---------------------------------------------------------------------------

    async def recover(self) -> int:
        """Jobs whose worker died mid-action run again (at least once)."""
        async with self._sessions() as session:
            repo = Repositories(session)
            count = await repo.jobs.recover(self._clock.now() - LEASE)
            await repo.commit()
        self._recovered_at = self._clock.now()
        if count:
            log.warning("%s system jobs were cut by a crash; running them again", count)
        return count

    async def claim(self) -> Claimed | None:
        """The oldest due job of a system this process reaches and is not busy with, with its
        work; an erasure of a person under a legal hold waits until the hold ends."""
        skip = [s.id for s in self._pack.systems if self._registry.connector(s.id) is None]
        skip += list(self._running)
        while True:
            now = self._clock.now()
            async with self._sessions() as session:
                repo = Repositories(session)
                job = await repo.jobs.claim(now, skip_systems=skip)
                if job is None:
                    await session.rollback()
                    return None
                if job.action == RequestType.ERASURE:
                    held = await repo.requests.hold_until(job.user_id, now)
                    if held is not None:
                        await repo.jobs.postpone(job, held)
                        await self._card(repo, job.request_id)
                        await repo.commit()
                        continue
                work = await self._work(repo, job)
                assert job.claimed_at is not None
                claimed = Claimed(
                    job.id, job.system_id, job.request_id, job.claimed_at, job.attempts, work
                )
                await repo.commit()  # the claim is durable before the system is touched
            return claimed

    async def _work(self, repo: Repositories, job: SystemJob) -> Work:
        user = await repo.users.get(job.user_id)
        phone = user.phone if user is not None and user.phone_verified_at else None
        request = await repo.requests.get(job.request_id) if job.request_id else None
        correction = None
        if request is not None and job.action == RequestType.RECTIFICATION:
            details = details_of(request)
            if details.get("field") and details.get("value"):
                correction = Correction(details["field"], details["value"])
        return Work(
            job_id=job.id,
            action=RequestType(job.action),
            subject=Subject(job.user_id, phone),
            request_id=job.request_id,
            due_at=request.due_at if request is not None else None,
            correction=correction,
            restrict_until=request.hold_until if request is not None else None,
        )

    async def run(self, job: Claimed) -> None:
        """The system's action, with a timeout; then its outcome recorded."""
        connector = self._registry.connector(job.system_id)
        outcome: Outcome
        if connector is None:
            outcome = Failed("not connected in this process")
        else:
            try:
                async with asyncio.timeout(JOB_TIMEOUT):
                    outcome = await connector.run(job.work)
            except asyncio.CancelledError:  # the worker stops: the job is pending again now
                await asyncio.shield(self._release(job))
                raise
            except TimeoutError:
                outcome = Failed("timed out")
            except Exception as error:  # its text may hold a value or a URL: only its type
                outcome = Failed(f"error: {type(error).__name__}")
        await self.record(job, outcome)

    async def _release(self, claimed: Claimed) -> None:
        async with self._sessions() as session:
            repo = Repositories(session)
            job = await repo.jobs.get(claimed.job_id)
            if job is not None and job.claimed_at == claimed.claimed_at:
                await repo.jobs.release(job)
            await repo.commit()

    async def record(self, claimed: Claimed, outcome: Outcome) -> bool:
        """The outcome, by compare-and-set on this worker's claim (False: the claim was
        recovered meanwhile, and the job's new run records instead)."""
        now = self._clock.now()
        async with self._sessions() as session:
            repo = Repositories(session)
            job = await repo.jobs.get(claimed.job_id)
            if job is None or job.status != JobStatus.RUNNING:
                await session.rollback()
                return False
            if job.claimed_at != claimed.claimed_at:
                await session.rollback()
                return False
            if isinstance(outcome, Done):
                moved = await repo.jobs.finish(
                    job, now, counts=outcome.counts, data=done_json(outcome)
                )
            elif isinstance(outcome, Accepted):
                moved = await repo.jobs.wait_for_callback(job)
            else:
                moved = await self._failed(repo, job, claimed, outcome, now)
            if moved and (not isinstance(outcome, Failed) or job.status != JobStatus.PENDING):
                await self._card(repo, claimed.request_id)
            await repo.commit()
        return moved

    async def _failed(
        self, repo: Repositories, job: SystemJob, claimed: Claimed, failed: Failed, now: datetime
    ) -> bool:
        reason = failed.reason
        log.warning(
            "System %s: job %s failed (attempt %s): %s",
            claimed.system_id,
            claimed.job_id,
            claimed.attempts,
            reason,
        )
        explained = claimed.request_id is not None and await repo.requests.said(
            claimed.request_id, MessageKind.EXPLAINED
        )
        if explained:  # a DPO completed the request meanwhile: cancelled like the rest
            return await repo.jobs.abandon(job, now, reason)
        give_up = claimed.attempts >= MAX_ATTEMPTS
        when = now + backoff(claimed.attempts)
        moved = await repo.jobs.retry_later(job, when, reason, give_up=give_up)
        if moved and give_up:
            system = self._pack.system(claimed.system_id)
            name = system.name.get(self._t.locale) if system is not None else claimed.system_id
            key = "carrying.failed_notice" if claimed.request_id else "carrying.failed_retention"
            text = self._t(
                key,
                system=escape(name),
                id=claimed.request_id or 0,
                attempts=claimed.attempts,
                reason=escape(reason),
            )
            await repo.outbox.add(kind=OutboxKind.NOTICE, text=text, now=now)
        return moved

    async def _card(self, repo: Repositories, request_id: int | None) -> None:
        """The card's checklist changed: it is rendered again."""
        if request_id is not None:
            now = self._clock.now()
            await repo.outbox.add(kind=OutboxKind.CARD_EDIT, request_id=request_id, now=now)
