"""An action on a request from the desk app, as the card's button and the text typed after it
would take it: the same audit name and role check (`request.<action>`; a clarification beyond
the agent's limit and a completion with the rest explained need a DPO), the same domain call
(`Desk`, `ErasureService` for an erasure's Done, the checklist's retry and tick), the same
limits (a text not empty and at most MAX_REASON, a ground of the pack's law, a future date).
The init data's user is the actor."""

from __future__ import annotations

from typing import Any

from bot.core.policy import RequestType
from bot.domain.dates import UNTIL_LIFTED, parse_day
from bot.domain.requests.catalogue import MAX_REASON
from bot.domain.requests.desk import Desk, RequestOutcome
from bot.domain.requests.rules import DeskRule, NoExtension, beyond_agents, clarifications
from bot.service.desk_app.call import BadInput, Call
from bot.telegram.desk_prompts import extension_note, outcome_note
from storage.enums import DECIDABLE, RequestStatus
from storage.models import Request

Outcome = RequestOutcome | NoExtension | DeskRule

# The API's action -> the card's audit name (`request.<it>`); clarify is decided per request.
AUDIT = {
    "take": "take",
    "done": "done",
    "restrict": "restrict",
    "refuse": "refuse",
    "question": "ask",
    "ask": "ask",
    "clarify": "clarify",
    "extend": "extend",
    "block": "block",
    "lift": "lift",
    "explain": "complete_explained",
    "complete_explained": "complete_explained",
    "retry": "job_retry",
    "tick": "tick",
}
WITH_TEXT = frozenset({"refuse", "question", "ask", "clarify", "extend", "block", "explain"})
WITH_TEXT |= {"complete_explained", "tick"}


def _text(call: Call, body: dict[str, Any]) -> str:
    text = body.get("text")
    text = text.strip() if isinstance(text, str) else ""
    if not text or len(text) > MAX_REASON:
        raise BadInput("bad_text", call.t("desk_server.bad_text", limit=MAX_REASON))
    return text


def _job_id(body: dict[str, Any]) -> int:
    job = body.get("job_id")
    if isinstance(job, bool) or not isinstance(job, int) or job <= 0:
        raise BadInput("bad_job")
    return job


async def _audit_name(call: Call, name: str, number: int) -> str:
    if name != "clarify":
        return f"request.{AUDIT[name]}"
    request = await call.repo.requests.get(number)
    if request is not None and beyond_agents(
        call.app.pack, await clarifications(call.repo, request)
    ):
        return "request.clarify_again"
    return "request.clarify"


async def perform(call: Call, number: int, body: dict[str, Any]) -> dict[str, Any]:
    name = body.get("action")
    if not isinstance(name, str) or name not in AUDIT:
        raise BadInput("bad_action", call.t("desk_server.bad_action"))
    text = _text(call, body) if name in WITH_TEXT else ""
    job = _job_id(body) if name in ("retry", "tick") else 0
    await call.check(await _audit_name(call, name, number), str(number))
    request = await call.load(number)
    desk = call.desk()
    if name in ("retry", "tick"):
        outcome: Outcome = await _job(call, desk, request, name, job, text)
    elif name in ("explain", "complete_explained", "lift"):
        outcome = await _late(call, desk, request, name, text)
    elif request.status not in DECIDABLE:
        outcome = RequestOutcome.CLOSED
    else:
        outcome = await _decide(call, desk, request, name, text, body)
    return _answer(call, outcome, request)


async def _job(
    call: Call, desk: Desk, request: Request, name: str, job: int, text: str
) -> RequestOutcome:
    if name == "retry":
        return await desk.retry_job(request.id, job)
    if not await desk.may_tick(request.id, job):
        return RequestOutcome.CLOSED
    return await desk.tick(request.id, job, call.user_id, text)


async def _late(call: Call, desk: Desk, request: Request, name: str, text: str) -> Outcome:
    """What the card offers after the decision: lift a restriction, complete with the rest
    explained (a DPO's, while the systems carry it out)."""
    if name == "lift":
        return await desk.lift(request, call.user_id)
    if request.status != RequestStatus.CARRYING_OUT:
        return RequestOutcome.CLOSED
    return await desk.complete_explained(request, call.user_id, text)


async def _decide(
    call: Call, desk: Desk, request: Request, name: str, text: str, body: dict[str, Any]
) -> Outcome:
    staff, pack = call.user_id, call.app.pack
    match name:
        case "take":
            return await desk.take(request, staff)
        case "done" if request.type == RequestType.RESTRICTION:
            return await desk.restrict(request, staff, _until(call, body, lifted=True))
        case "done":
            return await _done(call, desk, request)
        case "restrict":
            return await desk.restrict(request, staff, _until(call, body, lifted=True))
        case "refuse":
            return await desk.refuse(request, staff, text, str(body.get("ground") or ""))
        case "clarify":
            beyond = body.get("beyond")
            beyond = beyond.strip()[:MAX_REASON] if isinstance(beyond, str) else None
            over = beyond_agents(pack, await clarifications(call.repo, request))
            if over and not beyond:
                raise BadInput("need_beyond", call.t("desk_server.need_beyond"))
            return await desk.clarify(request, staff, text, beyond=beyond or None)
        case "extend":
            return await desk.extend(request, staff, text)
        case "block":
            return await desk.block(request, staff, _until(call, body, lifted=False), text)
        case _:
            return await desk.question(request, staff, text)


def _until(call: Call, body: dict[str, Any], *, lifted: bool) -> Any:
    """The day a hold or restriction ends ('YYYY-MM-DD', in the future); a restriction without
    one lasts until lifted."""
    until = body.get("until")
    if lifted and until in (None, "", "-"):
        return UNTIL_LIFTED
    day = parse_day(until, call.app.pack, call.app.clock.now()) if isinstance(until, str) else None
    if day is None:
        raise BadInput("bad_date", call.t("desk_server.bad_date"))
    return day


async def _done(call: Call, desk: Desk, request: Request) -> RequestOutcome:
    """Done, as the card's: an erasure erases now (with systems: once they are done), the rest
    are decided (with systems: carried out in them)."""
    if request.type != RequestType.ERASURE or desk.carried_out(request):
        return await desk.done(request, call.user_id)
    await call.repo.commit()  # the erasure runs in a transaction of its own
    return await desk.erase(request, call.user_id, call.app.erasure, call.app.bot)


def _answer(call: Call, outcome: Outcome, request: Request) -> dict[str, Any]:
    t, pack = call.t, call.app.pack
    if isinstance(outcome, NoExtension):
        return {
            "outcome": f"no_extension_{outcome}",
            "message": extension_note(outcome, request, t, pack),
        }
    if isinstance(outcome, DeskRule):
        return {"outcome": str(outcome), "message": t(f"card.rule_{outcome}", id=request.id)}
    if outcome is RequestOutcome.CLOSED and request.handled_by not in (None, call.user_id):
        outcome = RequestOutcome.DECIDED  # someone decided it a moment before (the card's note)
    note = outcome_note(outcome, request, t)
    return {"outcome": str(outcome), "message": note or t("desk_server.done", id=request.id)}
