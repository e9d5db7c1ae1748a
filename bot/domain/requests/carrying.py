"""Carrying an approved request out in the operator's systems (the pack's `[[systems]]`): which
systems have something to do for a request, and the jobs created in the approval's own
transaction (`Desk.carry_out`). A manual system, or one whose environment variables are not set
in the approving process ("not connected"), becomes an item staff tick by hand; the others are
the systems' worker's (`bot.delivery.systems`). The end of a request is `finishing`'s."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.core.policy import PolicyPack, RequestType
from bot.core.systems import System, SystemKind
from bot.domain.requests.catalogue import details_of
from bot.domain.systems import CARRIED_OUT
from storage.enums import JobStatus
from storage.models import Request
from storage.repositories import Repositories
from storage.repositories.systems import NOT_CONNECTED

# A recipient the person's data was disclosed to (a /disclose record), told of an erasure or a
# correction (GDPR art. 19): an item staff tick, its job named after the disclosure's row.
RECIPIENT = "recipient:"
TELLS_RECIPIENTS = frozenset({RequestType.ERASURE, RequestType.RECTIFICATION})


@dataclass(frozen=True)
class Connected:
    """The systems this process reaches (their environment variables are set and their
    connector was built): the others, manual or not, are done by hand."""

    ids: frozenset[str] = frozenset()

    def reaches(self, system: System) -> bool:
        return system.kind is not SystemKind.MANUAL and system.id in self.ids


def systems_for(pack: PolicyPack, request: Request) -> list[System]:
    """The systems with something to do for `request` (none: the request is decided as before,
    in the bot alone). A correction goes where its field is corrected; a restriction where one
    can be recorded; access, portability and erasure go everywhere."""
    if not pack.systems or request.type not in CARRIED_OUT:
        return []
    kind = RequestType(request.type)
    if kind is RequestType.RECTIFICATION:
        field = details_of(request).get("field", "")
        return [s for s in pack.systems if s.corrects(field)]
    if kind is RequestType.RESTRICTION:
        return [s for s in pack.systems if s.restricts()]
    return list(pack.systems)


async def add_jobs(
    repo: Repositories,
    systems: list[System],
    connected: Connected,
    *,
    user_id: int,
    request_id: int | None,
    action: str,
    now: datetime,
) -> None:
    """One job per system, in the caller's transaction: pending for the worker where this
    process reaches the system, a manual item otherwise (marked "not connected" when the system
    is not a manual one)."""
    for system in systems:
        status = JobStatus.PENDING if connected.reaches(system) else JobStatus.MANUAL
        job = await repo.jobs.add(
            user_id=user_id,
            request_id=request_id,
            system_id=system.id,
            action=action,
            now=now,
            status=status,
        )
        if status is JobStatus.MANUAL and system.kind is not SystemKind.MANUAL:
            job.last_error = NOT_CONNECTED
    await repo.session.flush()


async def add_recipients(
    repo: Repositories, *, user_id: int, request_id: int, action: str, now: datetime
) -> int:
    """GDPR art. 19: an erasure or a correction is passed on to each recipient the person's
    data was disclosed to (`/disclose`), once per recipient; staff tick each when told, with a
    note (who and when are recorded, and the register shows it). A webhook system is told by
    its own job. The number of recipients added."""
    if action not in TELLS_RECIPIENTS:
        return 0
    seen: set[str] = set()
    added = 0
    for disclosure in await repo.disclosures.of_user(user_id):
        key = disclosure.recipient.strip().casefold()
        if key in seen:
            continue
        seen.add(key)
        await repo.jobs.add(
            user_id=user_id,
            request_id=request_id,
            system_id=f"{RECIPIENT}{disclosure.id}",
            action=action,
            now=now,
            status=JobStatus.MANUAL,
        )
        added += 1
    return added


async def recipient_names(repo: Repositories, user_id: int) -> dict[str, str]:
    """The recipients' jobs' names: `recipient:<disclosure id>` -> the recipient as recorded."""
    return {f"{RECIPIENT}{d.id}": d.recipient for d in await repo.disclosures.of_user(user_id)}
