"""A request carried out in the operator's systems, from the card: approval creates the jobs
(`carrying`), staff retry a failed system, tick a manual one with a note, or (a DPO) complete the
request with the rest explained. The end of a request is `finishing`'s. `Desk` builds on it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum

from bot.core.clock import Clock
from bot.core.policy import PolicyPack
from bot.domain.requests.carrying import Connected, add_jobs, add_recipients, systems_for
from bot.domain.requests.relay import Relay
from storage.enums import DECIDABLE, JobStatus, MessageKind, OutboxKind, RequestStatus
from storage.models import Request
from storage.models_systems import SystemJob
from storage.repositories import Repositories


class RequestOutcome(StrEnum):
    """What became of a staff action on a request."""

    OK = "ok"
    CLOSED = "closed"  # the request no longer accepts this action
    DECIDED = "decided"  # another staff member decided it a moment earlier


Effect = Callable[[], Awaitable[None]]


class Checklist(Relay):
    """The checklist's actions. `connected`: the operator's systems this process reaches (the
    others are done by hand)."""

    def __init__(
        self,
        repo: Repositories,
        clock: Clock,
        pack: PolicyPack,
        connected: Connected | None = None,
    ) -> None:
        super().__init__(repo, clock, pack)
        self._connected = connected or Connected()

    async def _decided(self) -> None:
        """A staff decision is committed before staff are answered: the answer to a button can
        fail (a press older than Telegram allows, 'query is too old'), and the decision must
        stand all the same, as the user is told of it through the outbox."""
        await self._repo.commit()

    def carried_out(self, request: Request) -> bool:
        """Whether approving `request` creates jobs in the operator's systems. Not for a
        request without a bot user (registered by staff): the systems find a person by their
        Telegram account, and staff carry it out by hand."""
        return request.user_id is not None and bool(systems_for(self._pack, request))

    async def carry_out(
        self,
        request: Request,
        staff_id: int,
        *,
        effect: Effect | None = None,
        **values: object,
    ) -> RequestOutcome:
        """Approved: in ONE transaction, the request moves to `carrying_out` (compare-and-set on
        the status staff saw) and gets one job per system with something to do. The bot's own
        part (`effect`, `values`) is done now where the jobs do not need what it changes (a
        correction, a restriction's flag); an erasure's and an answer's come at the end
        (`finishing`). The user is told when the request is done."""
        seen = RequestStatus(request.status)
        if seen not in DECIDABLE:
            return RequestOutcome.CLOSED
        now = self._clock.now()
        if not await self._repo.requests.decide(
            request.id,
            seen,
            status=RequestStatus.CARRYING_OUT,
            handled_by=staff_id,
            handled_at=now,
        ):
            await self._repo.requests.get(request.id)
            return RequestOutcome.DECIDED
        await self._repo.requests.get(request.id)
        for name, value in values.items():
            setattr(request, name, value)
        if effect is not None:
            await effect()
        await add_jobs(
            self._repo,
            systems_for(self._pack, request),
            self._connected,
            user_id=request.user_id,
            request_id=request.id,
            action=request.type,
            now=now,
        )
        await add_recipients(
            self._repo, user_id=request.user_id, request_id=request.id, action=request.type, now=now
        )
        await self._repo.outbox.add(kind=OutboxKind.CARD_EDIT, request_id=request.id, now=now)
        await self._decided()
        return RequestOutcome.OK

    async def _job_of(self, request_id: int, job_id: int) -> SystemJob | None:
        """A job of a request being carried out (a checklist button's), else None."""
        job = await self._repo.jobs.get(job_id)
        request = await self._repo.requests.get(request_id)
        if job is None or request is None or job.request_id != request.id:
            return None
        return job if request.status == RequestStatus.CARRYING_OUT else None

    async def retry_job(self, request_id: int, job_id: int) -> RequestOutcome:
        """Staff retry a system that failed past the limit: the worker tries it again now."""
        job = await self._job_of(request_id, job_id)
        if job is None or job.status != JobStatus.FAILED:
            return RequestOutcome.CLOSED
        if not await self._repo.jobs.retry(job, self._clock.now()):
            return RequestOutcome.DECIDED
        await self._repo.outbox.add(
            kind=OutboxKind.CARD_EDIT, request_id=request_id, now=self._clock.now()
        )
        await self._decided()
        return RequestOutcome.OK

    async def may_tick(self, request_id: int, job_id: int) -> bool:
        job = await self._job_of(request_id, job_id)
        return job is not None and job.status == JobStatus.MANUAL

    async def tick(self, request_id: int, job_id: int, staff_id: int, note: str) -> RequestOutcome:
        """Staff did a system's part by hand: who, when and their note (sealed) are kept, and
        the audit log names the system (never the note)."""
        job = await self._job_of(request_id, job_id)
        if job is None or job.status != JobStatus.MANUAL:
            return RequestOutcome.CLOSED
        now = self._clock.now()
        if not await self._repo.jobs.tick(job, now, staff_id, note):
            return RequestOutcome.DECIDED
        await self._repo.audit.add(
            at=now,
            actor_id=staff_id,
            action="request.job_ticked",
            subject=f"request:{request_id}:{job.system_id}",
            allowed=True,
        )
        await self._repo.outbox.add(kind=OutboxKind.CARD_EDIT, request_id=request_id, now=now)
        await self._decided()
        return RequestOutcome.OK

    async def complete_explained(
        self, request: Request, staff_id: int, reason: str
    ) -> RequestOutcome:
        """A DPO completes a request being carried out with the rest explained: what is still
        owed is cancelled, the reason recorded on the request and in the audit log; the request
        is finished by the systems' worker's finishing pass (woken by this commit)."""
        if request.status != RequestStatus.CARRYING_OUT:
            return RequestOutcome.CLOSED
        now = self._clock.now()
        cancelled = await self._repo.jobs.cancel_unfinished(request.id, now, staff_id)
        await self._repo.requests.say(
            request.id, now, "staff", MessageKind.EXPLAINED, reason, staff_id
        )
        await self._repo.audit.add(
            at=now,
            actor_id=staff_id,
            action="request.completed_explained",
            subject=f"request:{request.id}:cancelled={cancelled}",
            allowed=True,
        )
        await self._repo.outbox.add(kind=OutboxKind.CARD_EDIT, request_id=request.id, now=now)
        await self._decided()
        return RequestOutcome.OK
