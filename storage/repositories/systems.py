"""The jobs that carry a request out in the operator's systems (`system_jobs`): created in the
approval's transaction, claimed one at a time by any instance's worker, finished by a
compare-and-set on the claim, ticked or retried by staff. The worker is
`bot.delivery.systems`; what a job does in a system is `bot.domain.systems`'s."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.dialect import claimable
from storage.enums import JOBS_UNFINISHED, JobStatus
from storage.models_systems import SystemJob


class SystemJobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self.added = False  # jobs added since the last commit: the commit wakes the worker

    async def add(
        self,
        *,
        user_id: int,
        request_id: int | None,
        system_id: str,
        action: str,
        now: datetime,
        status: JobStatus = JobStatus.PENDING,
    ) -> SystemJob:
        job = SystemJob(
            user_id=user_id,
            request_id=request_id,
            system_id=system_id,
            action=action,
            status=status,
            created_at=now,
            attempts=0,
            next_attempt_at=now,
        )
        self._session.add(job)
        self.added = self.added or status is JobStatus.PENDING
        await self._session.flush()
        return job

    async def get(self, job_id: int) -> SystemJob | None:
        return await self._session.get(SystemJob, job_id, populate_existing=True)

    async def of_request(self, request_id: int) -> list[SystemJob]:
        rows = await self._session.scalars(
            select(SystemJob).where(SystemJob.request_id == request_id).order_by(SystemJob.id)
        )
        return list(rows)

    async def of_user(self, user_id: int) -> list[SystemJob]:
        rows = await self._session.scalars(
            select(SystemJob).where(SystemJob.user_id == user_id).order_by(SystemJob.id)
        )
        return list(rows)

    async def claim(self, now: datetime, *, skip_systems: Iterable[str] = ()) -> SystemJob | None:
        """Take the oldest due pending job (of none of `skip_systems`) for this worker alone,
        `pending` -> `running`: one conditional UPDATE around a FOR UPDATE SKIP LOCKED read
        (storage.dialect.claimable), so two instances never take the same job."""
        found = aliased(SystemJob)
        query = (
            select(found.id)
            .where(found.status == JobStatus.PENDING, found.next_attempt_at <= now)
            .order_by(found.next_attempt_at, found.id)
            .limit(1)
        )
        skipped = list(skip_systems)
        if skipped:
            query = query.where(found.system_id.not_in(skipped))
        job_id = await self._session.scalar(
            update(SystemJob)
            .where(
                SystemJob.id == claimable(query).scalar_subquery(),
                SystemJob.status == JobStatus.PENDING,
            )
            .values(status=JobStatus.RUNNING, attempts=SystemJob.attempts + 1, claimed_at=now)
            .returning(SystemJob.id)
            .execution_options(synchronize_session=False)
        )
        return None if job_id is None else await self.get(job_id)

    async def _move(
        self,
        job: SystemJob,
        seen: JobStatus | tuple[JobStatus, ...],
        claimed_at: bool,
        **values: object,
    ) -> bool:
        """Compare-and-set from the status `seen` (or one of them; and, for a running job, from
        this worker's claim): False when another worker or staff moved the job first."""
        statuses = seen if isinstance(seen, tuple) else (seen,)
        conditions = [SystemJob.id == job.id, SystemJob.status.in_(statuses)]
        if claimed_at:
            conditions.append(SystemJob.claimed_at == job.claimed_at)
        result = await self._session.execute(
            update(SystemJob)
            .where(and_(*conditions))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        moved = bool(result.rowcount)  # type: ignore[attr-defined]
        if moved:
            await self.get(job.id)
        return moved

    async def finish(
        self,
        job: SystemJob,
        now: datetime,
        *,
        counts: dict[str, int] | None = None,
        data: str | None = None,
    ) -> bool:
        """The running job is done (`data`: what access collected, already sealed by the ORM
        when set through the job; here a JSON text set after the move)."""
        moved = await self._move(
            job,
            JobStatus.RUNNING,
            True,
            status=JobStatus.DONE,
            done_at=now,
            last_error=None,
            counts=None if counts is None else json.dumps(counts, sort_keys=True),
        )
        if moved and data is not None:
            job.data = data  # through the ORM: sealed under the person's key at flush
            await self._session.flush()
        return moved

    async def wait_for_callback(self, job: SystemJob) -> bool:
        """A webhook system accepted the job (202) and will call back."""
        return await self._move(job, JobStatus.RUNNING, True, status=JobStatus.WAITING)

    async def retry_later(
        self, job: SystemJob, when: datetime, error: str, *, give_up: bool = False
    ) -> bool:
        """The running job failed: tried again at `when`, or (`give_up`) shown to staff as
        failed until someone retries it. `error` names no value and no secret."""
        status = JobStatus.FAILED if give_up else JobStatus.PENDING
        return await self._move(
            job,
            JobStatus.RUNNING,
            True,
            status=status,
            next_attempt_at=when,
            last_error=error[:200],
        )

    async def called_back(
        self, job: SystemJob, now: datetime, counts: dict[str, int] | None, data: str | None
    ) -> bool:
        """A webhook system's callback completed a waiting job (a second callback is a no-op).
        A job still `running` is taken too: the callback may come before the worker recorded
        the 202 (its own move then finds the job moved). The commit wakes the worker, whose
        finishing pass may now complete the request."""
        moved = await self._move(
            job,
            (JobStatus.WAITING, JobStatus.RUNNING),
            False,
            status=JobStatus.DONE,
            done_at=now,
            last_error=None,
            counts=None if counts is None else json.dumps(counts, sort_keys=True),
        )
        if moved and data is not None:
            job.data = data
            await self._session.flush()
        self.added = self.added or moved
        return moved

    async def called_back_failed(
        self, job: SystemJob, when: datetime, error: str, *, give_up: bool = False
    ) -> bool:
        """A webhook system's callback said the job failed: it is sent again at `when`, or
        (`give_up`) shown to staff as failed. Like `called_back`, a `running` job is taken."""
        moved = await self._move(
            job,
            (JobStatus.WAITING, JobStatus.RUNNING),
            False,
            status=JobStatus.FAILED if give_up else JobStatus.PENDING,
            next_attempt_at=when,
            last_error=error[:200],
        )
        self.added = self.added or (moved and not give_up)
        return moved

    async def retry(self, job: SystemJob, now: datetime) -> bool:
        """Staff retry a failed job now, with a fresh count of attempts."""
        return await self._move(
            job, JobStatus.FAILED, False, status=JobStatus.PENDING, next_attempt_at=now, attempts=0
        )

    async def tick(self, job: SystemJob, now: datetime, staff_id: int, note: str) -> bool:
        """Staff did a manual job by hand."""
        moved = await self._move(
            job, JobStatus.MANUAL, False, status=JobStatus.DONE, done_at=now, done_by=staff_id
        )
        if moved:
            job.note = note  # sealed at flush
            await self._session.flush()
        return moved

    async def cancel_unfinished(self, request_id: int, now: datetime, staff_id: int) -> int:
        """A DPO completed the request with the rest explained: what is still owed is cancelled."""
        result = await self._session.execute(
            update(SystemJob)
            .where(
                SystemJob.request_id == request_id,
                SystemJob.status.in_(list(JOBS_UNFINISHED - {JobStatus.RUNNING})),
            )
            .values(status=JobStatus.CANCELLED, done_at=now, done_by=staff_id)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def recover(self, before: datetime) -> int:
        """Jobs left `running` by a worker that died mid-job (claimed before `before`) run
        again: every action is idempotent."""
        found = aliased(SystemJob)
        stale = (found.status == JobStatus.RUNNING, found.claimed_at < before)
        result = await self._session.execute(
            update(SystemJob)
            .where(
                SystemJob.id.in_(claimable(select(found.id).where(*stale))),
                SystemJob.status == JobStatus.RUNNING,
                SystemJob.claimed_at < before,
            )
            .values(status=JobStatus.PENDING)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def unfinished(self, request_id: int) -> int:
        """How many of the request's systems still owe their part."""
        jobs = await self.of_request(request_id)
        return sum(1 for job in jobs if job.status in JOBS_UNFINISHED)

    async def delivered(self, request_id: int, now: datetime, purge_at: datetime) -> None:
        """The access answer with the collected data reached the person: it is purged later."""
        await self._session.execute(
            update(SystemJob)
            .where(SystemJob.request_id == request_id, SystemJob.delivered_at.is_(None))
            .values(delivered_at=now, purge_at=purge_at)
            .execution_options(synchronize_session=False)
        )

    async def undelivered(self, request_id: int, purge_at: datetime) -> None:
        """The access answer could not reach the person (blocked, refused): the collected data
        is purged all the same (`delivered_at` stays empty)."""
        await self._session.execute(
            update(SystemJob)
            .where(SystemJob.request_id == request_id, SystemJob.purge_at.is_(None))
            .values(purge_at=purge_at)
            .execution_options(synchronize_session=False)
        )

    async def purge_due(self, now: datetime) -> int:
        """Collected data whose time after delivery has passed: only the counts remain."""
        result = await self._session.execute(
            update(SystemJob)
            .where(SystemJob.purge_at <= now, SystemJob.data.is_not(None))
            .values(data=None)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
