"""A canned desk API per the contract (/work: the issue 22 contract), serving the real static
page: the page's behaviour tested on its own (filters, paging, the generic views, the
register form, refusals), and screenshots of every view with steady data."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.desk_browser import security_headers, static_routes

LOCALES = Path(__file__).parent.parent / "locales"
STAFF = 7001
STRANGER = 7002
TYPES = ["access", "erasure", "rectification", "objection"]


def texts(locale: str) -> dict[str, str]:
    with (LOCALES / f"{locale}.toml").open("rb") as file:
        catalog = tomllib.load(file)
    out: dict[str, str] = {}
    for name, section in catalog.items():
        if name.startswith("desk"):
            out.update({k: v for k, v in section.items() if isinstance(v, str)})
    return out


def canned_requests() -> list[dict[str, Any]]:
    items = []
    for n in range(1, 61):
        kind = TYPES[n % len(TYPES)]
        status = "carrying_out" if n % 10 == 0 else "received" if n % 3 else "in_progress"
        items.append(
            {
                "id": n,
                "type": kind,
                "type_label": kind,
                "status": status,
                "status_label": status.replace("_", " "),
                "user_id": 5000 + n % 7,
                "received_at": f"2026-11-{1 + n % 28:02d}T10:00:00+00:00",
                "due_at": f"2026-12-{1 + n % 28:02d}T10:00:00+00:00",
                "overdue": n % 9 == 0,
                "handled_by": STAFF if n % 4 == 0 else None,
            }
        )
    items.sort(key=lambda item: (item["due_at"], item["id"]))
    return items


class FakeDesk:
    """The canned API; `calls` keeps (method, path, init data) of every call."""

    def __init__(self, init_data: dict[str, int], locale: str = "en") -> None:
        self.init_data = init_data  # raw init data -> the user it is signed for
        self.locale = locale
        self.items = canned_requests()
        self.calls: list[tuple[str, str]] = []
        self.posted: list[dict[str, Any]] = []
        self.decided: set[int] = set()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[security_headers])
        static_routes(app)
        r = app.router
        r.add_get("/desk/api/me", self.me)
        r.add_get("/desk/api/requests", self.requests)
        r.add_get("/desk/api/requests/{id}", self.request)
        r.add_post("/desk/api/requests/{id}/action", self.action)
        r.add_get("/desk/api/people/{user_id}", self.person)
        r.add_get("/desk/api/breaches", self.breaches)
        r.add_get("/desk/api/figures", self.figures)
        r.add_post("/desk/api/external", self.external)
        return app

    def who(self, request: web.Request) -> int:
        self.calls.append((request.method, request.path_qs))
        user = self.init_data.get(request.headers.get("X-Telegram-Init-Data", ""))
        if user is None:
            raise web.HTTPUnauthorized(text='{"error": "unauthorised"}')
        if user != STAFF:
            raise web.HTTPForbidden(text='{"error": "forbidden"}')
        return user

    async def me(self, request: web.Request) -> web.Response:
        user = self.who(request)
        return web.json_response(
            {
                "user": {"id": user, "name": "Dana"},
                "role": "dpo",
                "locale": self.locale,
                "texts": texts(self.locale),
            }
        )

    async def requests(self, request: web.Request) -> web.Response:
        self.who(request)
        q = request.query
        items = self.items
        if q.get("q"):
            if not q["q"].isdigit():
                raise web.HTTPBadRequest(text='{"error": "digits only"}')
            n = int(q["q"])
            items = [i for i in items if n in (i["id"], i["user_id"])]
        if q.get("status"):
            items = [i for i in items if i["status"] == q["status"]]
        if q.get("type"):
            items = [i for i in items if i["type"] == q["type"]]
        if q.get("overdue"):
            items = [i for i in items if i["overdue"]]
        if q.get("mine"):
            items = [i for i in items if i["handled_by"] == STAFF]
        page = int(q.get("page", "0"))
        pages = max(1, -(-len(items) // 25))
        counts = {
            "open": len(self.items),
            "overdue": sum(i["overdue"] for i in self.items),
            "due_week": 9,
            "mine": sum(i["handled_by"] == STAFF for i in self.items),
            "carrying_out": sum(i["status"] == "carrying_out" for i in self.items),
            "waiting": 0,
        }
        return web.json_response(
            {
                "items": items[page * 25 : page * 25 + 25],
                "page": page,
                "pages": pages,
                "total": len(items),
                "counts": counts,
            }
        )

    async def request(self, request: web.Request) -> web.Response:
        self.who(request)
        n = int(request.match_info["id"])
        decided = n in self.decided
        actions = (
            []
            if decided
            else [
                {"action": "take", "label": "Take", "needs_text": False},
                {"action": "done", "label": "Done", "needs_text": False},
                {"action": "ask", "label": "Question", "needs_text": True},
                {
                    "action": "refuse",
                    "label": "Manifestly unfounded",
                    "needs_text": True,
                    "ground": "unfounded",
                },
                {
                    "action": "refuse",
                    "label": "Excessive",
                    "needs_text": True,
                    "ground": "excessive",
                },
                {"action": "tick", "label": "Done by hand", "needs_text": True, "job_id": 3},
                {
                    "action": "explain",
                    "label": "Complete, explained",
                    "needs_text": True,
                    "allowed": False,
                },
            ]
        )
        return web.json_response(
            {
                "request": {"id": n, "status": "done" if decided else "received"},
                "card_text": f"<b>Request #{n}</b> — erasure\nUser <code>5001</code>"
                "<script>alert(1)</script><img src=x>",
                "timeline": [
                    {
                        "at": "2026-11-02T10:00:00+00:00",
                        "kind": "filed",
                        "who": "user",
                        "staff_id": None,
                        "text": "Filed: erasure",
                    },
                    {
                        "at": "2026-11-02T10:05:00+00:00",
                        "kind": "verified",
                        "who": "system",
                        "staff_id": None,
                        "text": "Identity verified",
                    },
                    {
                        "at": "2026-11-03T09:00:00+00:00",
                        "kind": "staff",
                        "who": "staff",
                        "staff_id": STAFF,
                        "text": "Taken",
                    },
                ],
                "checklist": [
                    {
                        "job_id": 3,
                        "system": "billing",
                        "name": "Billing",
                        "status": "manual",
                        "line": "by hand: waiting",
                    },
                ],
                "actions": actions,
            }
        )

    async def action(self, request: web.Request) -> web.Response:
        self.who(request)
        body = await request.json()
        self.posted.append(body)
        n = int(request.match_info["id"])
        if n in self.decided:
            return web.json_response({"outcome": "decided", "message": "Already decided."})
        if body["action"] in ("done", "refuse"):
            self.decided.add(n)
        return web.json_response({"outcome": "ok", "message": f"Request #{n}: {body['action']}."})

    async def person(self, request: web.Request) -> web.Response:
        self.who(request)
        user = int(request.match_info["user_id"])
        rows = [i for i in self.items if i["user_id"] == user][:3]
        return web.json_response(
            {
                "user": {
                    "id": user,
                    "name": "Ann",
                    "username": "",
                    "language": "en",
                    "joined_at": "2026-10-01T08:00:00+00:00",
                    "blocked_bot": False,
                },
                "requests": [
                    {
                        k: r[k]
                        for k in (
                            "id",
                            "type",
                            "type_label",
                            "status",
                            "status_label",
                            "received_at",
                            "due_at",
                            "overdue",
                        )
                    }
                    | {"closed_at": None, "external": False}
                    for r in rows
                ],
                "consents": [
                    {
                        "purpose": "marketing",
                        "label": "News and offers",
                        "granted": True,
                        "policy_version": "2026-10",
                        "updated_at": "2026-10-01T08:00:00+00:00",
                    }
                ],
                "ledger": [
                    {
                        "purpose": "marketing",
                        "label": "News and offers",
                        "granted": True,
                        "at": "2026-10-01T08:00:00+00:00",
                        "policy_version": "2026-10",
                        "source": "bot",
                    }
                ],
                "disclosures": [
                    {
                        "at": "2026-10-05T08:00:00+00:00",
                        "recipient": "Courier Ltd",
                        "data": "name, address",
                        "legal_basis": "contract",
                        "staff_id": STAFF,
                    }
                ],
                "holds": [],
            }
        )

    async def breaches(self, request: web.Request) -> web.Response:
        self.who(request)
        authorities = [
            {
                "law": "99-z",
                "name": "OAPD",
                "due_at": "2026-12-03T10:00:00+00:00",
                "notified_at": None,
                "state": "pending",
            }
        ]
        users = {"due_at": None, "started_at": None, "state": "pending", "recipients": 0, "told": 0}
        return web.json_response(
            {
                "items": [
                    {
                        "id": 1,
                        "known_at": "2026-12-01T10:00:00+00:00",
                        "created_at": "2026-12-01T11:00:00+00:00",
                        "what": "Lost laptop",
                        "categories": ["contact"],
                        "affected": "some",
                        "people": "120",
                        "records": "",
                        "authority_due_at": "2026-12-03T10:00:00+00:00",
                        "authorities": authorities,
                        "state": "pending",
                        "users": users,
                    }
                ]
            }
        )

    async def figures(self, request: web.Request) -> web.Response:
        self.who(request)
        months = ["2026-10", "2026-11"]
        return web.json_response(
            {
                "months": months,
                "types": [
                    {"type": "access", "label": "Access"},
                    {"type": "erasure", "label": "Erasure"},
                ],
                "on_time": [
                    {
                        "type": "access",
                        "month": "2026-10",
                        "closed": 10,
                        "on_time": 9,
                        "rate": 0.9,
                        "median_days": 6.5,
                    },
                    {
                        "type": "access",
                        "month": "2026-11",
                        "closed": 8,
                        "on_time": 6,
                        "rate": 0.75,
                        "median_days": 9.0,
                    },
                    {
                        "type": "erasure",
                        "month": "2026-11",
                        "closed": 4,
                        "on_time": 4,
                        "rate": 1.0,
                        "median_days": 3.0,
                    },
                ],
                "open_by_age": [
                    {"bucket": b, "count": n}
                    for b, n in (("0-7", 12), ("8-14", 5), ("15-30", 3), ("30+", 1))
                ],
                "purposes": [{"purpose": "marketing", "label": "News and offers"}],
                "consents": [
                    {"purpose": "marketing", "month": m, "granted": g}
                    for m, g in zip(months, (40, 55), strict=True)
                ],
            }
        )

    async def external(self, request: web.Request) -> web.Response:
        self.who(request)
        body = await request.json()
        self.posted.append(body)
        return web.json_response({"id": 61, "linked": True, "attachment": "ok"})
