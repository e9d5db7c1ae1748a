"""The desk app's request API: who am I, the table, a request (card text, timeline, checklist,
actions) and an action on it. Each call is checked and audited as the card's buttons are
(`Call.check`: `desk.open`, `desk.requests`, `desk.request`, and the card's own
`request.<action>` names and roles for actions), and an action goes through the same domain
services as the card (`Desk`, `ErasureService`, the checklist's methods), so a decision taken
here edits the card in the group, and of two decisions at once (here and on the card) one wins
(compare-and-set) and the other is told "decided"."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiogram.types import InlineKeyboardMarkup
from aiohttp import web

from bot.core.i18n import Translator
from bot.core.policy import RequestType
from bot.core.roles import Role, may, need_for
from bot.delivery.outbox.card import render_card
from bot.domain.desk_view import DeskView, parse_query, row_json
from bot.domain.requests.carrying import recipient_names
from bot.domain.requests.rules import beyond_agents, clarifications
from bot.service.desk_app.actions import AUDIT, perform
from bot.service.desk_app.call import Call, api, app_texts
from bot.telegram.callbacks import GroundCb, JobAction, JobCb, RequestAction, RequestCb
from bot.telegram.texts.checklist import job_line, names_of
from storage.models import Request
from storage.repositories.desk_queries import Row

if TYPE_CHECKING:
    from bot.service.app import App

# What each card button is called in the API, and whether a text comes with it.
_BUTTONS: dict[RequestAction, tuple[str, bool]] = {
    RequestAction.TAKE: ("take", False),
    RequestAction.DONE: ("done", False),
    RequestAction.QUESTION: ("question", True),
    RequestAction.CLARIFY: ("clarify", True),
    RequestAction.EXTEND: ("extend", True),
    RequestAction.BLOCK: ("block", True),
    RequestAction.LIFT: ("lift", False),
    RequestAction.EXPLAIN: ("explain", True),
}


async def me(call: Call) -> dict[str, Any]:
    caller = await call.check("desk.open")
    locale = call.app.settings.staff_locale
    return {
        "user": {"id": caller.id, "name": caller.name},
        "role": str(caller.role),
        "locale": locale,
        "zone": call.app.pack.timezone,  # times are shown in the operator's zone, as on cards
        "texts": app_texts(locale),
        "start_param": caller.start_param,
    }


async def requests(call: Call) -> dict[str, Any]:
    query = parse_query(call.request.query, call.app.pack)  # 400 before anything is read
    caller = await call.check("desk.requests")
    listing = await DeskView(call.repo, call.app.clock, call.app.pack).requests(query, caller.id)
    now = call.app.clock.now()
    return {
        "items": [row_json(row, call.t, now) for row in listing.items],
        "page": listing.page,
        "pages": listing.pages,
        "total": listing.total,
        "counts": listing.counts,
    }


def request_id(call: Call) -> int:
    return int(call.request.match_info["id"])


async def detail(call: Call) -> dict[str, Any]:
    number = request_id(call)
    caller = await call.check("desk.request", str(number))
    request = await call.load(number)
    app, t = call.app, call.t
    text, markup = await render_card(call.repo, app.pack, app.clock, t, request)
    jobs = await call.repo.jobs.of_request(request.id) if app.pack.systems else []
    names = names_of(app.pack, t, await recipient_names(call.repo, request.user_id) if jobs else {})
    checklist = [
        {
            "job_id": job.id,
            "system": job.system_id,
            "name": names.get(job.system_id, job.system_id),
            "status": job.status,
            "line": job_line(job, names.get(job.system_id, job.system_id), app.pack, t),
        }
        for job in jobs
    ]
    timeline = await DeskView(call.repo, app.clock, app.pack).timeline(request, t)
    entries = [
        {
            "at": e.at.isoformat(),
            "kind": e.kind,
            "who": e.who,
            "staff_id": e.staff_id,
            "text": e.text,
        }
        for e in timeline
    ]
    for job, item in zip(jobs, checklist, strict=True):
        at = (job.done_at or job.created_at).isoformat()
        entries.append(
            {
                "at": at,
                "kind": "system",
                "who": "system",
                "staff_id": job.done_by,
                "text": item["line"],
            }
        )
    entries.sort(key=lambda e: (e["at"], e["kind"] == "system"))
    beyond = beyond_agents(app.pack, await clarifications(call.repo, request))
    return {
        "request": request_json(request, t, app.clock.now()),
        "card_text": text,
        "timeline": entries,
        "checklist": checklist,
        "actions": actions_of(markup, request, caller.role, beyond),
    }


def request_json(request: Request, t: Translator, now: datetime) -> dict[str, Any]:
    """The card's fields that are not personal (the card's text has the rest)."""
    row = Row(
        request.id,
        request.type,
        request.status,
        request.user_id,
        request.received_at,
        request.due_at,
        request.handled_by,
    )

    def when(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return row_json(row, t, now) | {
        "handled_at": when(request.handled_at),
        "closed_at": when(request.closed_at),
        "hold_until": when(request.hold_until),
        "verification": request.verification,
        "refusal_ground": request.refusal_ground,
    }


def actions_of(
    markup: InlineKeyboardMarkup | None, request: Request, role: Role, beyond: bool
) -> list[dict[str, Any]]:
    """Exactly what the card's keyboard offers now, as API actions (a template is picked in
    the group; a link is not an action), each `allowed` or not for `role` as the card's check
    would decide. A clarification beyond the agent's limit is a DPO's, with a reason
    (`needs_beyond`)."""
    found: list[dict[str, Any]] = []
    for row in markup.inline_keyboard if markup is not None else []:
        for button in row:
            if button.callback_data is None:
                continue
            action = _action(button.callback_data, request, beyond)
            if action is not None:
                audited = "clarify_again" if action.get("needs_beyond") else AUDIT[action["action"]]
                allowed = may(role, need_for(f"request.{audited}"))
                found.append({"label": button.text} | action | {"allowed": allowed})
    return found


def _action(data: str, request: Request, beyond: bool) -> dict[str, Any] | None:
    prefix = data.split(":", 1)[0]
    if prefix == GroundCb.__prefix__:
        ground = GroundCb.unpack(data)
        return {"action": "refuse", "ground": ground.ground, "needs_text": True}
    if prefix == JobCb.__prefix__:
        job = JobCb.unpack(data)
        tick = job.action is JobAction.TICK
        return {"action": "tick" if tick else "retry", "job_id": job.job, "needs_text": tick}
    if prefix != RequestCb.__prefix__:
        return None
    pressed = RequestCb.unpack(data).action
    if pressed not in _BUTTONS:
        return None
    name, needs_text = _BUTTONS[pressed]
    if pressed is RequestAction.DONE and request.type == RequestType.RESTRICTION:
        name = "restrict"  # the card's Done on a restriction asks until when
    if pressed is RequestAction.CLARIFY and beyond:
        return {"action": name, "needs_text": True, "needs_beyond": True}
    return {"action": name, "needs_text": needs_text}


async def action(call: Call) -> dict[str, Any]:
    body = await call.body()
    return await perform(call, request_id(call), body)


def add_routes(router: web.UrlDispatcher, app: App) -> None:
    router.add_get("/desk/api/me", api(app, me))
    router.add_get("/desk/api/requests", api(app, requests))
    router.add_get(r"/desk/api/requests/{id:\d{1,15}}", api(app, detail))
    router.add_post(r"/desk/api/requests/{id:\d{1,15}}/action", api(app, action))
