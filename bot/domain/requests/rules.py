"""The limits the law puts on what staff decide on a card: the refusal grounds the pack's law
gives (each with its article), how late and how far a term may be extended, how many times a
clarification may restart or pause it, and when a request repeats one the law allows free once
a calendar year. Plain rules over a request and the pack; `desk` applies them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.core.deadlines import add_months, end_of_day, extension_months, request_due
from bot.core.policy import PolicyPack, RefusalGround, RequestType
from storage.enums import OPEN, MessageKind
from storage.models import Request, RequestMessage
from storage.repositories import Repositories


class NoExtension(StrEnum):
    """Why a request's term cannot be extended (GDPR art. 12(3))."""

    CLOSED = "closed"
    UNAVAILABLE = "unavailable"  # the pack's law gives no extension (Law 99-Z)
    ALREADY = "already"  # once per request
    LATE = "late"  # only within the first term from receipt, however long it was paused


class DeskRule(StrEnum):
    """Why a staff action was not taken (`card.rule_<value>` tells staff)."""

    NO_GROUND = "no_ground"  # not a refusal ground of this pack's law for this request type
    CLARIFY_LIMIT = "clarify_limit"  # further clarifications need a DPO and a reason


# --- extension (GDPR art. 12(3)) -------------------------------------------------------------


def original_due(pack: PolicyPack, request: Request) -> datetime:
    """The term as it ran from receipt, before any pause or extension."""
    return request_due(pack, request.type, request.received_at)


def extend_by(pack: PolicyPack, request: Request) -> datetime:
    """The last moment an extension may be decided: the person is told of it within the first
    term from receipt (GDPR art. 12(3): "within one month of receipt"), however long a
    clarification paused the term since."""
    return original_due(pack, request)


def extended_due(pack: PolicyPack, request: Request) -> datetime:
    """The due date an extension gives: the current (paused) due date plus the pack's months,
    never beyond the first term plus those months from receipt (three months under the GDPR),
    plus the time a clarification paused the term."""
    months = extension_months(pack, request.type)
    paused = max(request.due_at - original_due(pack, request), timedelta(0))
    received = request.received_at.astimezone(pack.zone)
    cap = end_of_day(add_months(received, 1 + months).date(), pack.zone) + paused
    return min(add_months(request.due_at.astimezone(pack.zone), months), cap)


async def extension_refusal(
    repo: Repositories, pack: PolicyPack, request: Request, now: datetime
) -> NoExtension | None:
    """Why this request cannot be extended now, or None when it can."""
    if request.status not in OPEN:
        return NoExtension.CLOSED
    if extension_months(pack, request.type) == 0:
        return NoExtension.UNAVAILABLE
    if await repo.requests.said(request.id, MessageKind.EXTENSION):
        return NoExtension.ALREADY
    if now > extend_by(pack, request):
        return NoExtension.LATE
    return None


# --- refusal grounds -------------------------------------------------------------------------


def refusal_kind(ground: RefusalGround) -> MessageKind:
    """The stored kind of a refusal: `unfounded` keeps the kind it had before grounds were pack
    data (GDPR art. 12(5))."""
    return MessageKind.REFUSAL_UNFOUNDED if ground.id == "unfounded" else MessageKind.REFUSAL


# --- clarifications --------------------------------------------------------------------------


async def clarifications(repo: Repositories, request: Request) -> int:
    """How many times staff asked to clarify identity or scope on the request."""
    return len(await repo.requests.said_all(request.id, MessageKind.CLARIFY))


def beyond_agents(pack: PolicyPack, done: int) -> bool:
    """Whether one more clarification exceeds what an agent may ask (then a DPO, with a
    reason, must: each one restarts or pauses the term again)."""
    return done >= pack.requests.agent_clarifications


# --- what the card shows ---------------------------------------------------------------------


async def earlier_this_year(
    repo: Repositories, pack: PolicyPack, request: Request
) -> Request | None:
    """For a disclosures request (99-Z art. 12: free once a calendar year), the first one the
    person filed earlier in the same calendar year of the pack's time zone: this one repeats it.
    It is served all the same (the law allows a fee; the bot never charges)."""
    if request.type != RequestType.DISCLOSURES:
        return None
    year = request.received_at.astimezone(pack.zone).year
    earlier = [
        r
        for r in await repo.requests.of_user(request.user_id)
        if r.type == RequestType.DISCLOSURES
        and r.id < request.id
        and r.received_at.astimezone(pack.zone).year == year
    ]
    return min(earlier, key=lambda r: r.id, default=None)


@dataclass(frozen=True)
class CardNotes:
    """What the card adds from the rules: the ground of a refusal, the earlier request this
    one repeats, the DPO's reasons for clarifications beyond the agent's limit."""

    ground: RefusalGround | None = None
    earlier: Request | None = None
    beyond: tuple[RequestMessage, ...] = ()


async def card_notes(repo: Repositories, pack: PolicyPack, request: Request) -> CardNotes:
    ground = None
    if request.refusal_ground:
        ground = next((g for g in pack.refusal_grounds if g.id == request.refusal_ground), None)
    beyond = await repo.requests.said_all(request.id, MessageKind.CLARIFY_BEYOND)
    return CardNotes(ground, await earlier_this_year(repo, pack, request), tuple(beyond))
