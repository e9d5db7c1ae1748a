"""The jobs that carry a request out in the operator's systems (`system_jobs`): created in the
approval's transaction, claimed one at a time by any instance's worker, finished by a
compare-and-set on the claim, ticked or retried by staff. The worker is
`bot.delivery.systems`; what a job does in a system is `bot.domain.systems`'s."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.dialect import claimable
from storage.enums import JOBS_UNFINISHED, JobStatus, RequestStatus
from storage.models import Request
from storage.models_systems import SystemJob

# What a job pending behind a legal hold says in `last_error` (the card shows "held until").
HELD = "held"
# What a manual job created for a system not connected in the approving process says.
NOT_CONNECTED = "not connected"


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
        moved = await self._move(
            job,
            JobStatus.FAILED,
            False,
            status=JobStatus.PENDING,
            next_attempt_at=now,
            attempts=0,
            last_error=None,
        )
        self.added = self.added or moved  # the commit wakes the worker
        return moved

    async def abandon(self, job: SystemJob, now: datetime, error: str) -> bool:
        """The running job failed after a DPO completed its request with the rest explained:
        it is not retried, but cancelled like the rest."""
        return await self._move(
            job,
            JobStatus.RUNNING,
            True,
            status=JobStatus.CANCELLED,
            done_at=now,
            last_error=error[:200],
        )

    async def release(self, job: SystemJob) -> bool:
        """The worker stops mid-job (shutdown): the job is pending again at once, for any
        instance, rather than after the lease (its action is idempotent)."""
        return await self._move(
            job, JobStatus.RUNNING, True, status=JobStatus.PENDING, attempts=SystemJob.attempts - 1
        )

    async def postpone(self, job: SystemJob, until: datetime) -> bool:
        """A legal hold in force on the person stops the running erasure job until it ends:
        back to `pending` at `until`, the attempt not counted."""
        return await self._move(
            job,
            JobStatus.RUNNING,
            True,
            status=JobStatus.PENDING,
            next_attempt_at=until,
            attempts=SystemJob.attempts - 1,
            last_error=HELD,
        )

    async def ready_requests(self) -> list[int]:
        """Requests being carried out whose every system is done (or cancelled): to finish."""
        unfinished = exists().where(
            SystemJob.request_id == Request.id, SystemJob.status.in_(list(JOBS_UNFINISHED))
        )
        rows = await self._session.scalars(
            select(Request.id)
            .where(Request.status == RequestStatus.CARRYING_OUT, ~unfinished)
            .order_by(Request.id)
        )
        return list(rows)

    async def ready_people(self) -> list[int]:
        """People whose storage-limitation erasure jobs (no request) are all done: the bot's
        own erasure of them follows."""
        other = aliased(SystemJob)
        unfinished = exists().where(
            other.user_id == SystemJob.user_id,
            other.request_id.is_(None),
            other.status.in_(list(JOBS_UNFINISHED)),
        )
        rows = await self._session.scalars(
            select(SystemJob.user_id)
            .where(SystemJob.request_id.is_(None), ~unfinished)
            .distinct()
            .order_by(SystemJob.user_id)
        )
        return list(rows)

    async def retention_pending(self, user_id: int) -> bool:
        """Whether the person has storage-limitation erasure jobs (no request) not yet done."""
        found = await self._session.scalar(
            select(SystemJob.id)
            .where(
                SystemJob.user_id == user_id,
                SystemJob.request_id.is_(None),
                SystemJob.status.in_(list(JOBS_UNFINISHED)),
            )
            .limit(1)
        )
        return found is not None

    async def outcomes(self) -> dict[int, list[tuple[str, str, datetime | None, int | None]]]:
        """Every request's systems (no personal column, nothing decrypted): per request, each
        system's id, status, when it ended and the staff member who ticked or explained it."""
        rows = await self._session.execute(
            select(
                SystemJob.request_id,
                SystemJob.system_id,
                SystemJob.status,
                SystemJob.done_at,
                SystemJob.done_by,
            )
            .where(SystemJob.request_id.is_not(None))
            .order_by(SystemJob.request_id, SystemJob.id)
        )
        found: dict[int, list[tuple[str, str, datetime | None, int | None]]] = {}
        for request_id, system_id, status, done_at, done_by in rows.all():
            found.setdefault(request_id, []).append((system_id, status, done_at, done_by))
        return found

    async def tick(self, job: SystemJob, now: datetime, staff_id: int, note: str) -> bool:
        """Staff did a manual job by hand."""
        moved = await self._move(
            job, JobStatus.MANUAL, False, status=JobStatus.DONE, done_at=now, done_by=staff_id
        )
        if moved:
            job.note = note  # sealed at flush
            await self._session.flush()
        self.added = self.added or moved  # the commit wakes the worker: the request may end
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
        self.added = True  # the commit wakes the worker: the request ends
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
