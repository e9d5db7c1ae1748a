"""The desk app's API (bot.service.desk_app) on the real bot's web app, against the fake Bot
API: Telegram's init data checked (forged, expired, missing: 401; not staff: 403; nothing
read), the staff role and audit exactly as the card's, the table's filters and counts, a
request's timeline, actions through the card's domain services (the user told once, the card
edited), one decision when the card and the app decide at once; the security headers; nothing
personal in the logs; the card's "Open in the app" link; the staff menu button."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.core.deadlines import request_due
from bot.core.policy import RequestType
from bot.service.web import create_web_app
from storage.models import AuditEntry, Request
from storage.repositories import Repositories
from tests.fake_telegram import BOT_USERNAME, TOKEN, FakeTelegram, _member
from tests.kit import ADMIN_CHAT_ID, Harness, Person
from tests.systems_kit import ENV, FakeSystems, write_systems_pack
from tests.test_consents import onboarded
from tests.test_requests import file_erasure, stored
from tests.test_systems_desk import approved_erasure, fakes, work  # noqa: F401 (a fixture)
from tests.webapp import HEADER, forged, signed_init_data

WEBAPP = "https://desk.example.org"
AGENT_ID = 4_200_001
OUTSIDER_ID = 4_200_002


class Desk:
    """The app's HTTP API as the page calls it, signed for one Telegram user."""

    def __init__(self, client: TestClient, clock: FrozenClock) -> None:
        self.client = client
        self.clock = clock

    def signed(self, user_id: int, *, age: timedelta = timedelta(0), name: str = "Sam") -> str:
        user = {"id": user_id, "first_name": name, "language_code": "en"}
        return signed_init_data(TOKEN, user, self.clock.now() - age)

    async def call(
        self, method: str, path: str, init: str | None, body: Any = None
    ) -> tuple[int, Any, Any]:
        headers = {} if init is None else {HEADER: init}
        async with self.client.request(method, path, headers=headers, json=body) as response:
            text = await response.text()
            data = json.loads(text) if text.startswith(("{", "[")) else text
            return response.status, data, response.headers

    async def get(self, path: str, user_id: int) -> Any:
        status, data, _ = await self.call("GET", path, self.signed(user_id))
        assert status == 200, (status, data)
        return data

    async def act(self, number: int, user_id: int, **body: Any) -> Any:
        path = f"/desk/api/requests/{number}/action"
        status, data, _ = await self.call("POST", path, self.signed(user_id), body)
        assert status == 200, (status, data)
        return data


@pytest.fixture
async def desk_bot(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[Harness]:
    harness = Harness(
        fake,
        tmp_path,
        clock=clock,
        webapp_url=WEBAPP,
        webapp_short_name="desk",
        staff_roles={AGENT_ID: "agent"},
    )
    await harness.start()
    yield harness
    await harness.stop()


@pytest.fixture
async def desk(desk_bot: Harness, clock: FrozenClock) -> AsyncIterator[Desk]:
    client = TestClient(TestServer(create_web_app(desk_bot.app)))
    await client.start_server()
    yield Desk(client, clock)
    await client.close()


async def audit(bot: Harness, action: str) -> list[AuditEntry]:
    async with bot.app.sessions() as session:
        rows = await session.scalars(select(AuditEntry).where(AuditEntry.action == action))
        return list(rows)


async def test_me_and_refusals(desk_bot: Harness, desk: Desk) -> None:
    sam = desk_bot.staff("Sam")
    me = await desk.get("/desk/api/me", sam.id)
    assert me["user"] == {"id": sam.id, "name": "Sam"} and me["role"] == "dpo"
    assert me["locale"] == "ru" and me["texts"]["desk_server.open_in_app"]
    assert [e.allowed for e in await audit(desk_bot, "desk.open")] == [True]

    ann = await onboarded(desk_bot, "Ann")
    number = await file_erasure(desk_bot, ann)
    paths = ["/desk/api/me", "/desk/api/requests", f"/desk/api/requests/{number}"]
    for path in paths:
        for init in (
            None,
            "",
            forged(desk.signed(sam.id)),
            desk.signed(sam.id, age=timedelta(hours=2)),
            "hash=abc&user=%7B%22id%22%3A1%7D&auth_date=1",
        ):
            status, data, _ = await desk.call("GET", path, init)
            assert status == 401 and set(data) == {"error"}, (path, init, data)
        status, data, _ = await desk.call("GET", path, desk.signed(OUTSIDER_ID))
        assert status == 403 and set(data) == {"error"} and "Ann" not in json.dumps(data)
    refused = await audit(desk_bot, "desk.requests")
    assert [(e.actor_id, e.allowed) for e in refused] == [(OUTSIDER_ID, False)]
    status, data, _ = await desk.call(
        "POST", f"/desk/api/requests/{number}/action", desk.signed(OUTSIDER_ID), {"action": "take"}
    )
    assert status == 403
    assert (await stored(desk_bot, number)).status == "received"


async def test_an_agent_and_a_dpo(desk_bot: Harness, desk: Desk) -> None:
    """The card's roles: an agent works the desk, a DPO-only action is refused and audited."""
    sam = desk_bot.staff("Sam")
    ann = await onboarded(desk_bot, "Ann")
    number = await file_erasure(desk_bot, ann)
    assert (await desk.get("/desk/api/me", AGENT_ID))["role"] == "agent"
    path = f"/desk/api/requests/{number}/action"
    body = {"action": "explain", "text": "The archive is gone"}
    status, data, _ = await desk.call("POST", path, desk.signed(AGENT_ID), body)
    assert status == 403 and data == {"error": "role"}
    refused = await audit(desk_bot, "request.complete_explained")
    assert [(e.actor_id, e.subject, e.allowed) for e in refused] == [(AGENT_ID, str(number), False)]
    dpo = await desk.act(number, sam.id, **body)  # allowed, but not being carried out
    assert dpo["outcome"] == "closed"
    taken = await desk.act(number, AGENT_ID, action="take")
    assert taken["outcome"] == "ok"
    assert (await stored(desk_bot, number)).handled_by == AGENT_ID
    assert [e.allowed for e in await audit(desk_bot, "request.take")] == [True]


async def many_requests(bot: Harness, count: int) -> list[int]:
    """`count` requests of a few users, received an hour apart (straight into the database:
    no cards), oldest first; their numbers."""
    now = bot.clock.now()
    kinds = [RequestType.ACCESS, RequestType.ERASURE, RequestType.RECTIFICATION]
    numbers = []
    async with bot.app.sessions() as session:
        repo = Repositories(session)
        for user_id in range(7_000_001, 7_000_011):
            await repo.users.create(
                user_id, language="en", username=None, first_name="U", last_name=None, now=now
            )
        for i in range(count):
            received = now - timedelta(hours=count - i)
            request = await repo.requests.add(
                user_id=7_000_001 + i % 10,
                type=kinds[i % 3],
                details="{}",
                status="received",
                verification="telegram_id",
                received_at=received,
                due_at=request_due(bot.pack, kinds[i % 3], received),
            )
            numbers.append(request.id)
        await repo.commit()
    return numbers


async def test_the_table_filters_counts_and_pages(desk_bot: Harness, desk: Desk) -> None:
    sam = desk_bot.staff("Sam")
    numbers = await many_requests(desk_bot, 300)
    async with desk_bot.app.sessions() as session:
        for number in numbers[:30]:  # Sam took 30, 20 of them wait for the user
            request = await session.get(Request, number)
            assert request is not None
            request.status, request.handled_by = "in_progress", sam.id
        for number in numbers[:20]:
            request = await session.get(Request, number)
            assert request is not None
            request.status = "waiting_user"
        for number in numbers[-10:]:
            request = await session.get(Request, number)
            assert request is not None
            request.status = "done"
        await session.commit()

    first = await desk.get("/desk/api/requests", sam.id)
    assert first["total"] == 290 and first["pages"] == 12 and len(first["items"]) == 25
    dues = [item["due_at"] for item in first["items"]]
    assert dues == sorted(dues)
    item = first["items"][0]
    assert set(item) == {
        "id", "type", "type_label", "status", "status_label", "user_id", "received_at",
        "due_at", "overdue", "handled_by",
    }  # fmt: skip
    assert first["counts"]["open"] == 290 and first["counts"]["mine"] == 30
    assert first["counts"]["waiting"] == 20 and first["counts"]["carrying_out"] == 0
    last = await desk.get("/desk/api/requests?page=11", sam.id)
    assert len(last["items"]) == 290 - 11 * 25
    everything = await desk.get("/desk/api/requests?status=all", sam.id)
    assert everything["total"] == 300
    done = await desk.get("/desk/api/requests?status=done", sam.id)
    assert done["total"] == 10 and {i["status"] for i in done["items"]} == {"done"}
    erasures = await desk.get("/desk/api/requests?type=erasure", sam.id)
    assert {i["type"] for i in erasures["items"]} == {"erasure"}
    assert erasures["total"] == sum(1 for n in numbers[:-10] if (n - numbers[0]) % 3 == 1)
    mine = await desk.get("/desk/api/requests?mine=1", sam.id)
    assert mine["total"] == 30 and {i["handled_by"] for i in mine["items"]} == {sam.id}
    waiting = await desk.get("/desk/api/requests?status=waiting_user", sam.id)
    assert waiting["total"] == 20
    by_number = await desk.get(f"/desk/api/requests?q={numbers[5]}", sam.id)
    assert [i["id"] for i in by_number["items"]] == [numbers[5]]
    by_user = await desk.get("/desk/api/requests?q=7000003&status=all", sam.id)
    assert by_user["total"] == 30 and {i["user_id"] for i in by_user["items"]} == {7_000_003}

    desk_bot.clock.advance(timedelta(days=40))  # the oldest are overdue now
    overdue = await desk.get("/desk/api/requests?overdue=1", sam.id)
    assert overdue["total"] == overdue["counts"]["overdue"] > 0
    assert all(i["overdue"] for i in overdue["items"])
    week = await desk.get("/desk/api/requests?due_within=7", sam.id)
    assert week["total"] == week["counts"]["due_week"]
    assert not any(i["overdue"] for i in week["items"])

    for bad in ("q=Ann", "q=%2B375", "page=-1", "status=lost", "type=x", "due_within=a"):
        status, data, _ = await desk.call("GET", "/desk/api/requests?" + bad, desk.signed(sam.id))
        assert status == 400 and data["error"] == "bad_query", bad
    assert len(await audit(desk_bot, "desk.requests")) == 11  # the refused queries read nothing


def said(person: Person, fragment: str) -> int:
    return sum(1 for e in person.inbox if fragment in e.text)


async def test_a_request_its_timeline_and_done_from_the_app(
    desk_bot: Harness, desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sam = desk_bot.staff("Sam")
    ann = await onboarded(desk_bot, "Ann")
    number = await file_erasure(desk_bot, ann, reason="Moving to Vilnius")
    await desk_bot.settle()
    [card] = desk_bot.cards()
    link = f"https://t.me/{BOT_USERNAME}/desk?startapp=req_{number}"
    assert {"text": "📋 Открыть в приложении", "url": link} in card.buttons()

    detail = await desk.get(f"/desk/api/requests/{number}", sam.id)
    assert detail["request"]["id"] == number and detail["request"]["status"] == "received"
    assert f"№{number}" in detail["card_text"] and "Ann" in detail["card_text"]
    offered = {a["action"] for a in detail["actions"]}
    assert {"take", "done", "question", "clarify", "block", "refuse"} <= offered
    assert all(a["ground"] for a in detail["actions"] if a["action"] == "refuse")
    assert all(a["allowed"] for a in detail["actions"])
    assert detail["checklist"] == []
    asked = await desk.act(number, sam.id, action="question", text="Which account, the app?")
    assert asked["outcome"] == "ok"
    await desk_bot.settle()
    question = ann.inbox[-1]
    assert "Which account, the app?" in question.text
    await ann.reply_to(question, "The app, since 2024")
    await desk_bot.settle()
    timeline = (await desk.get(f"/desk/api/requests/{number}", sam.id))["timeline"]
    kinds = [entry["kind"] for entry in timeline]
    assert kinds[:2] == ["filed", "verified"]
    assert kinds.index("staff_action") < kinds.index("question") < kinds.index("answer")
    answer = next(e for e in timeline if e["kind"] == "answer")
    assert answer["who"] == "user" and answer["text"] == "The app, since 2024"
    action = next(e for e in timeline if e["kind"] == "staff_action")
    assert action["staff_id"] == sam.id and "request.ask" in action["text"]
    assert [e.subject for e in await audit(desk_bot, "desk.request")] == [str(number)] * 2

    done = await desk.act(number, sam.id, action="done")
    assert done["outcome"] == "ok"
    await desk_bot.settle()
    assert said(ann, "Your erasure request is done") == 1
    final = desk_bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]["text"]
    assert "Данные заявления удалены" in final and "Ann" not in final
    again = await desk.call("GET", f"/desk/api/requests/{number}", desk.signed(sam.id))
    assert again[0] == 404
    assert [e.allowed for e in await audit(desk_bot, "request.done")] == [True]

    logged = caplog.text
    for secret in ("Ann", "Vilnius", "Which account", "The app, since", TOKEN, "+375"):
        assert secret not in logged, secret


async def test_the_card_and_the_app_at_once_decide_once(desk_bot: Harness, desk: Desk) -> None:
    sam, kim = desk_bot.staff("Sam"), desk_bot.staff("Kim")
    ann = await onboarded(desk_bot, "Ann")
    number = await file_erasure(desk_bot, ann)
    await desk_bot.settle()
    _, answer = await asyncio.gather(sam.tap("🙋 Взять"), desk.act(number, kim.id, action="take"))
    await desk_bot.settle()
    assert said(ann, "is now being handled") == 1
    request = await stored(desk_bot, number)
    assert request.handled_by in (sam.id, kim.id)
    assert answer["outcome"] == ("ok" if request.handled_by == kim.id else "decided")

    _, answer = await asyncio.gather(
        sam.tap("✅ Выполнено"), desk.act(number, kim.id, action="done")
    )
    await desk_bot.settle()
    assert said(ann, "Your erasure request is done") == 1
    assert answer["outcome"] in ("ok", "decided")
    async with desk_bot.app.sessions() as session:
        assert await session.get(Request, number) is None  # erased, once


async def test_bad_actions_change_nothing(desk_bot: Harness, desk: Desk) -> None:
    sam = desk_bot.staff("Sam")
    ann = await onboarded(desk_bot, "Ann")
    number = await file_erasure(desk_bot, ann)
    path = f"/desk/api/requests/{number}/action"
    for body in (
        {"action": "erase_everything"},
        {"action": "question"},
        {"action": "question", "text": " "},
        {"action": "question", "text": "x" * 1001},
        {"action": "block", "text": "A court order", "until": "2001-01-01"},
        {"action": "tick", "text": "done", "job_id": "1"},
        [1, 2],
    ):
        status, data, _ = await desk.call("POST", path, desk.signed(sam.id), body)
        assert status == 400, (body, data)
    refused = await desk.act(number, sam.id, action="refuse", text="No", ground="forged")
    assert refused["outcome"] == "no_ground"
    status, _, _ = await desk.call(
        "POST", "/desk/api/requests/999999/action", desk.signed(sam.id), {"action": "take"}
    )
    assert status == 404
    assert (await stored(desk_bot, number)).status == "received"
    held = await desk.act(number, sam.id, action="block", text="A court order", until="2027-12-31")
    assert held["outcome"] == "ok" and (await stored(desk_bot, number)).status == "blocked"


async def test_security_headers_and_no_cookies(desk_bot: Harness, desk: Desk) -> None:
    sam = desk_bot.staff("Sam")
    calls = [
        ("GET", "/desk/api/me", desk.signed(sam.id)),
        ("GET", "/desk/api/me", None),
        ("GET", "/desk/api/requests", desk.signed(OUTSIDER_ID)),
        ("GET", "/desk/", None),
        ("GET", "/desk/static/desk.js", None),
        ("GET", "/desk/static/..%2F..%2Fconfig.py", None),
        ("GET", "/desk/api/nothing", desk.signed(sam.id)),
    ]
    for method, path, init in calls:
        status, _, headers = await desk.call(method, path, init)
        assert status in (200, 401, 403, 404), (path, status)
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors https://web.telegram.org https://*.telegram.org" in csp
        assert headers["Cache-Control"] == "no-store"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "Set-Cookie" not in headers
    status, _, headers = await desk.call("GET", "/desk/static/..%2F..%2Fconfig.py", None)
    assert status == 404
    status, _, headers = await desk.call("GET", "/healthz", None)
    assert "Content-Security-Policy" not in headers  # the desk's headers are the desk's


async def test_no_app_without_its_url(bot: Harness) -> None:
    client = TestClient(TestServer(create_web_app(bot.app)))
    await client.start_server()
    try:
        async with client.get("/desk/api/me") as response:
            assert response.status == 404
    finally:
        await client.close()
    ann = await onboarded(bot, "Ann")
    await file_erasure(bot, ann)
    await bot.settle()
    [card] = bot.cards()
    assert not any("url" in b for b in card.buttons())


STAFF_ID = 4_300_001


async def test_menu_buttons_follow_the_role(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_private_chat({"id": STAFF_ID, "first_name": "Stas"})
    harness = Harness(fake, tmp_path, clock=clock, webapp_url=WEBAPP, staff_ids=[STAFF_ID])
    await harness.start()
    try:
        web_app = {"type": "web_app", "text": "Стол", "web_app": {"url": WEBAPP + "/desk/"}}
        assert fake.menu_buttons[STAFF_ID] == web_app
        dora = harness.staff("Dora")
        tim = harness.user("Tim")
        await dora.send(f"/role {tim.id} agent")
        assert fake.menu_buttons[tim.id] == web_app
        await dora.send(f"/role {tim.id} marketing")
        assert fake.menu_buttons[tim.id] is None
        await dora.send(f"/role {tim.id} dpo")
        assert fake.menu_buttons[tim.id] == web_app
        await dora.send(f"/role {tim.id} none")
        dora.expect("снята")
        assert fake.menu_buttons[tim.id] is None
        fake.fail("setChatMenuButton", chat_id=tim.id, description="Bad Request: chat not found")
        caplog.clear()
        await dora.send(f"/role {tim.id} agent")
        dora.expect("выдана роль")  # the role holds; the button failed, logged
        assert fake.menu_buttons[tim.id] is None
        assert "desk menu button" in caplog.text and str(tim.id) not in caplog.text

        # An administrator of the admin group is a DPO; leaving it, no longer staff.
        nina = harness.user("Nina")
        fake.members[(ADMIN_CHAT_ID, nina.id)] = "administrator"
        await member_update(harness, nina, "member", "administrator")
        assert fake.menu_buttons[nina.id] == web_app
        fake.members[(ADMIN_CHAT_ID, nina.id)] = "left"
        await member_update(harness, nina, "administrator", "left")
        assert fake.menu_buttons[nina.id] is None
    finally:
        await harness.stop()


async def member_update(harness: Harness, person: Person, was: str, now: str) -> None:
    user = person.as_user()
    await harness.feed(
        {
            "chat_member": {
                "chat": harness.fake.chats[ADMIN_CHAT_ID],
                "from": user,
                "date": 0,
                "old_chat_member": _member(was, user),
                "new_chat_member": _member(now, user),
            }
        }
    )


async def test_the_systems_checklist_in_the_app(
    fake: FakeTelegram,
    tmp_path: Path,
    clock: FrozenClock,
    fakes: FakeSystems,  # noqa: F811 (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request carried out in the operator's systems: its checklist and its lines in the
    timeline, the checklist's actions (a DPO's completion not an agent's), a system ticked
    from the app finishes the erasure."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    harness = Harness(
        fake,
        tmp_path,
        pack=str(write_systems_pack(tmp_path)),
        clock=clock,
        systems=True,
        webapp_url=WEBAPP,
        staff_roles={AGENT_ID: "agent"},
    )
    harness.factory = fakes.factory()
    await harness.start()
    await harness.app.systems.stop()  # the test runs the worker's passes itself
    client = TestClient(TestServer(create_web_app(harness.app)))
    await client.start_server()
    try:
        desk = Desk(client, clock)
        ann, sam, number = await approved_erasure(harness)
        await work(harness)
        detail = await desk.get(f"/desk/api/requests/{number}", sam.id)
        statuses = {item["system"]: item["status"] for item in detail["checklist"]}
        assert statuses == {"crm": "done", "helpdesk": "done", "archive": "manual"}
        assert all(item["line"] for item in detail["checklist"])
        assert sum(1 for e in detail["timeline"] if e["kind"] == "system") == 3
        [tick] = [a for a in detail["actions"] if a["action"] == "tick"]
        [explain] = [a for a in detail["actions"] if a["action"] == "explain"]
        assert explain["allowed"] and explain["needs_text"]
        agents = await desk.get(f"/desk/api/requests/{number}", AGENT_ID)
        assert not next(a for a in agents["actions"] if a["action"] == "explain")["allowed"]
        ticked = await desk.act(
            number, AGENT_ID, action="tick", job_id=tick["job_id"], text="Folder shredded"
        )
        assert ticked["outcome"] == "ok"
        await work(harness)
        assert said(ann, "Your erasure request is done") == 1
    finally:
        await client.close()
        await harness.stop()
