"""The desk app's person, breach register, figures and external-request views (issue 22),
through their functions and through HTTP (the routes behind a stand-in for the server's check,
which is StaffDirectory.check as the server's is); the /stats chart's legend hides no data."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.core.deadlines import request_due
from bot.domain import desk_more
from bot.domain.breaches import Breaches, BreachInput
from bot.domain.stats import Stats
from bot.service.desk_app import api_more
from bot.service.web import create_web_app
from bot.telegram.charts import draw_chart
from storage.enums import RequestStatus
from storage.models import AuditEntry, Request, RequestAttachment
from storage.repositories import Repositories
from tests.fake_telegram import FakeTelegram
from tests.kit import ADMIN_CHAT_ID, Harness
from tests.test_campaigns import subscriber
from tests.test_desk_app_api import AGENT_ID, WEBAPP, Desk
from tests.test_stats import at, done, file_access
from tests.webapp import forged


async def audit_rows(bot: Harness, action: str) -> list[AuditEntry]:
    async with bot.app.sessions() as session:
        rows = await session.scalars(select(AuditEntry).where(AuditEntry.action == action))
        return list(rows)


async def request_row(bot: Harness, number: int) -> Request:
    async with bot.app.sessions() as session:
        found = await Repositories(session).requests.get(number)
        assert found is not None
        return found


# --- a person ---------------------------------------------------------------------------------


async def test_person_shows_requests_consents_disclosures_and_holds(
    bot: Harness, clock: FrozenClock
) -> None:
    staff = bot.staff("Sam")
    clock.set(at("2026-09-10"))
    ann = await subscriber(bot, "Ann")
    first = await file_access(bot, ann)
    clock.set(at("2026-09-12"))
    await done(bot, staff, first)
    second = await file_access(bot, ann)
    now = clock.now()
    async with bot.app.sessions() as session:
        repo = Repositories(session)
        await repo.disclosures.add(
            user_id=ann.id,
            at=now,
            recipient="Tax office",
            data="name, payments",
            legal_basis="law",
            staff_id=staff.id,
        )
        request = await repo.requests.get(second)
        assert request is not None
        request.status, request.hold_until = RequestStatus.BLOCKED, now + timedelta(days=90)
        request.reason = "court order"
        await repo.commit()

    view = await api_more.person_view(bot.app, staff.id, ann.id)
    assert view["user"]["id"] == ann.id and view["user"]["name"] == "Ann"
    assert [r["id"] for r in view["requests"]] == [second, first]
    assert view["requests"][1]["status"] == "done" and not view["requests"][1]["external"]
    assert view["requests"][0]["type_label"]  # translated (staff language: Russian)
    [consent] = view["consents"]
    assert consent["purpose"] == "marketing" and consent["granted"] is True
    assert [(e["purpose"], e["granted"]) for e in view["ledger"]] == [("marketing", True)]
    [disclosure] = view["disclosures"]
    assert disclosure["recipient"] == "Tax office" and disclosure["staff_id"] == staff.id
    [hold] = view["holds"]
    assert hold == {
        "request_id": second,
        "kind": "hold",
        "until": (now + timedelta(days=90)).isoformat(),
        "reason": "court order",
    }
    with pytest.raises(api_more.NotFound):
        await api_more.person_view(bot.app, staff.id, 999_999)


# --- the breach register ----------------------------------------------------------------------


async def test_breach_register_has_each_authoritys_deadline_and_state(
    hosting_bot: Harness, clock: FrozenClock
) -> None:
    bot = hosting_bot
    staff = bot.staff("Dee")
    known = clock.now() - timedelta(hours=1)
    facts = BreachInput(
        known_at=known,
        what="a lost laptop",
        categories="names",
        measures="remote wipe",
        consequences="low",
        affected="all",
        people="about 10",
        records="about 10",
    )
    async with bot.app.sessions() as session:
        service = Breaches(Repositories(session), bot.app.clock, bot.app.pack)
        breach = await service.record(staff.id, facts)
        laws = [law.id for law in bot.app.pack.under]
        assert len(laws) == 2  # Law 99-Z and the GDPR: two authorities, two deadlines
        assert await service.authority_notified(breach.id, staff.id, laws[0])

    register = await api_more.breaches_view(bot.app, staff.id)
    [item] = register["items"]
    assert item["id"] == breach.id and item["what"] == "a lost laptop"
    states = {a["law"]: a["state"] for a in item["authorities"]}
    assert states == {laws[0]: "done", laws[1]: "pending"}
    assert all(a["due_at"] for a in item["authorities"]) and item["state"] == "pending"
    assert item["users"]["state"] == "pending" and item["users"]["recipients"] == 0

    clock.advance(timedelta(days=10))  # every deadline has passed
    register = await api_more.breaches_view(bot.app, staff.id)
    [item] = register["items"]
    assert {a["law"]: a["state"] for a in item["authorities"]}[laws[1]] == "overdue"
    assert item["state"] == "overdue" and item["users"]["state"] == "overdue"


# --- figures ----------------------------------------------------------------------------------


async def test_figures_per_type_and_month_open_by_age_and_consents(
    bot: Harness, clock: FrozenClock
) -> None:
    staff = bot.staff("Sam")
    clock.set(at("2026-09-10"))
    ann = await subscriber(bot, "Ann")
    first = await file_access(bot, ann)
    clock.set(at("2026-09-12"))
    await done(bot, staff, first)  # 2 days, on time
    await file_access(bot, ann)  # still open at the end: 74 days old
    clock.set(at("2026-11-20"))
    bob = await subscriber(bot, "Bob")
    await file_access(bot, bob)  # 3 days old
    clock.set(at("2026-11-23"))

    figures = await api_more.figures_view(bot.app, staff.id, "3m")
    assert figures["months"] == ["2026-09", "2026-10", "2026-11"]
    [row] = figures["on_time"]
    assert row == {
        "type": "access",
        "month": "2026-09",
        "closed": 1,
        "on_time": 1,
        "rate": 1.0,
        "median_days": 2.0,
    }
    ages = {b["bucket"]: b["count"] for b in figures["open_by_age"]}
    assert ages == {"0-7": 1, "8-14": 0, "15-30": 0, "30+": 1}
    grants = {
        (c["purpose"], c["month"]): c["granted"]
        for c in figures["consents"]
        if c["purpose"] == "marketing"
    }
    assert grants == {
        ("marketing", "2026-09"): 1,
        ("marketing", "2026-10"): 0,
        ("marketing", "2026-11"): 1,
    }
    assert any(t["type"] == "access" and t["label"] for t in figures["types"])
    with pytest.raises(api_more.BadInput):
        await api_more.figures_view(bot.app, staff.id, "soon")


def test_age_buckets() -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    days = {d: desk_more.age_bucket(now - timedelta(days=d, hours=1), now) for d in range(40)}
    assert Counter(days.values()) == {"0-7": 8, "8-14": 7, "15-30": 16, "30+": 9}


# --- a request that came outside the bot ------------------------------------------------------


def form(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "access",
        "channel": "email",
        "received_on": "2026-11-20",
        "identity_check": "e-mail address verified in the account",
        "text": "Please send me my data",
    }
    return body | changes


async def test_external_request_of_a_bot_user(bot: Harness, clock: FrozenClock) -> None:
    staff = bot.staff("Sam")
    ann = await subscriber(bot, "Ann")
    result = await api_more.register_external(bot.app, staff.id, form(user_id=ann.id))
    await bot.settle()
    number = result["id"]
    assert result == {"id": number, "linked": True}
    request = await request_row(bot, number)
    assert request.user_id == ann.id and request.verification == "external"
    # The clock runs from the date received (the start of that day in the operator's zone).
    start = datetime(2026, 11, 20, tzinfo=bot.app.pack.zone)
    assert request.received_at == start
    assert request.due_at == request_due(bot.app.pack, "access", start)
    card = bot.cards()[-1]
    assert f"№{number}" in card.text and "по электронной почте" in card.text
    assert "e-mail address verified in the account" in card.text
    [row] = await audit_rows(bot, "request.register_external")
    assert row.actor_id == staff.id and row.subject == f"request:{number}"
    await ann.send("/requests")
    ann.expect(f"#{number}")


async def test_external_request_without_a_bot_user_is_decided_on_its_card(
    bot: Harness, clock: FrozenClock
) -> None:
    staff = bot.staff("Sam")
    result = await api_more.register_external(
        bot.app, staff.id, form(user_id="12345", received_on="2026-11-23", channel="post")
    )
    await bot.settle()
    number = result["id"]
    assert result["linked"] is False
    request = await request_row(bot, number)
    assert request.user_id is None and request.received_at == clock.now()
    assert request.verification == desk_more.EXTERNAL
    assert json.loads(request.details)["telegram_id"] == "12345"
    card = bot.cards()[-1]
    assert "не пользуется ботом" in card.text and "12345" in card.text
    await done(bot, staff, len(bot.cards()))
    assert (await request_row(bot, number)).status == RequestStatus.DONE
    view = await api_more.figures_view(bot.app, staff.id, "")
    assert view["on_time"][0]["closed"] == 1


async def test_external_request_with_a_scan(bot: Harness, clock: FrozenClock) -> None:
    staff = bot.staff("Sam")
    scan = b"%PDF-1.4 scan of a signed letter"
    attachment = {"name": "letter.pdf", "base64": base64.b64encode(scan).decode()}
    result = await api_more.register_external(bot.app, staff.id, form(attachment=attachment))
    number = result["id"]
    assert result["attachment"] == "ok"
    [posted] = [e for e in bot.fake.events if e.kind == "document"]
    assert posted.chat_id == ADMIN_CHAT_ID and posted.raw["content"] == scan
    assert f"№{number}" in posted.text and "letter" not in posted.text
    async with bot.app.sessions() as session:
        [row] = await session.scalars(select(RequestAttachment))
    assert row.request_id == number and row.size == len(scan) and row.kind == "document"


async def test_external_request_is_checked(bot: Harness, clock: FrozenClock) -> None:
    staff = bot.staff("Sam")
    big = base64.b64encode(b"x" * (api_more.MAX_SCAN + 1)).decode()
    for body, field in [
        (form(type="dance"), "type"),
        (form(channel="pigeon"), "channel"),
        (form(received_on="2026-11-24"), "received_on"),  # tomorrow
        (form(received_on="20.11.2026"), "received_on"),
        (form(identity_check=" "), "identity_check"),
        (form(text=""), "text"),
        (form(user_id="12a"), "user_id"),
        (form(user_id=True), "user_id"),
        (form(attachment={"name": "a.exe", "base64": "AAAA"}), "attachment"),
        (form(attachment={"name": "a.pdf", "base64": "not base64!"}), "attachment"),
        (form(attachment={"name": "a.pdf", "base64": big}), "attachment_size"),
    ]:
        with pytest.raises(api_more.BadInput) as caught:
            await api_more.register_external(bot.app, staff.id, body)
        assert caught.value.field == field, body
    async with bot.app.sessions() as session:
        assert await Repositories(session).requests.count() == 0
    assert desk_more.parse_external(form(), bot.app.pack, date(2026, 11, 23)).user_id is None


# --- through HTTP -----------------------------------------------------------------------------


@pytest.fixture
async def desk(fake: FakeTelegram, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Desk]:
    """The real bot's web app with the desk (WEBAPP_URL set), an agent besides the group's
    administrators (DPOs)."""
    bot = Harness(fake, tmp_path, clock=clock, webapp_url=WEBAPP, staff_roles={AGENT_ID: "agent"})
    await bot.start()
    client = TestClient(TestServer(create_web_app(bot.app), host="127.0.0.1"))
    await client.start_server()
    desk = Desk(client, clock)
    desk.bot = bot  # type: ignore[attr-defined]
    try:
        yield desk
    finally:
        await client.close()
        await bot.stop()


async def test_the_routes_with_telegrams_init_data(desk: Desk) -> None:
    bot: Harness = desk.bot  # type: ignore[attr-defined]
    staff = bot.staff("Sam")
    ann = await subscriber(bot, "Ann")
    me = desk.signed(staff.id)
    status, data, headers = await desk.call("GET", f"/desk/api/people/{ann.id}", me)
    assert status == 200 and data["user"]["id"] == ann.id
    assert headers["Cache-Control"] == "no-store" and "Content-Security-Policy" in headers
    [row] = await audit_rows(bot, "desk.person")
    assert row.subject == str(ann.id) and row.actor_id == staff.id and row.allowed
    status, data, _ = await desk.call("GET", "/desk/api/people/1", me)
    assert status == 404 and data["error"] == "not_found"
    assert (await desk.call("GET", "/desk/api/people/x1", me))[0] == 404  # no such route
    # An agent: a person and the breach register are a DPO's (refused, audited); figures and
    # registering a request are desk work.
    agent = desk.signed(AGENT_ID)
    assert (await desk.call("GET", f"/desk/api/people/{ann.id}", agent))[0] == 403
    assert (await desk.call("GET", "/desk/api/breaches", agent))[0] == 403
    allowed = [r.allowed for r in await audit_rows(bot, "desk.person")]
    assert allowed == [True, True, False]  # Ann's, ID 1's (not found), the agent's
    assert (await desk.call("GET", "/desk/api/figures?period=12m", agent))[0] == 200
    # Not staff, forged, expired, missing: nothing.
    stranger = desk.signed(ann.id, name="Ann")
    assert (await desk.call("GET", f"/desk/api/people/{ann.id}", stranger))[0] == 403
    assert (await desk.call("GET", f"/desk/api/people/{ann.id}", forged(me)))[0] == 401
    old = desk.signed(staff.id, age=timedelta(days=2))
    assert (await desk.call("GET", "/desk/api/breaches", old))[0] == 401
    assert (await desk.call("GET", "/desk/api/breaches", None))[0] == 401
    status, data, _ = await desk.call("GET", "/desk/api/breaches", me)
    assert status == 200 and data == {"items": []}
    status, data, _ = await desk.call("GET", "/desk/api/figures?period=12m", me)
    assert status == 200 and len(data["months"]) == 12
    status, data, _ = await desk.call("GET", "/desk/api/figures?period=soon", me)
    assert status == 400 and data["error"] == "period" and "12m" in data["message"]

    status, data, _ = await desk.call("POST", "/desk/api/external", agent, form())
    assert status == 200, data
    assert (await request_row(bot, data["id"])).user_id is None
    [row] = await audit_rows(bot, "request.register_external")
    assert row.actor_id == AGENT_ID and row.subject == f"request:{data['id']}"
    status, data, _ = await desk.call("POST", "/desk/api/external", me, form(channel="x"))
    assert status == 400 and data["error"] == "invalid_channel"
    assert "Выберите" in data["message"]
    # A scan near the limit passes (the webhook's small body limit is not the form's).
    scan = {"name": "scan.png", "base64": base64.b64encode(b"x" * 3_000_000).decode()}
    status, data, _ = await desk.call("POST", "/desk/api/external", me, form(attachment=scan))
    assert status == 200 and data["attachment"] == "ok", data
    huge = {"name": "scan.png", "base64": "A" * (api_more.MAX_BODY + 10)}
    status, data, _ = await desk.call("POST", "/desk/api/external", me, form(attachment=huge))
    assert status == 400 and data["error"] == "too_big"
    assert (await desk.call("POST", "/desk/api/external", None, form()))[0] == 401


# --- the /stats chart -------------------------------------------------------------------------


def test_the_stats_legend_hides_no_bar_or_point() -> None:
    from matplotlib import pyplot as plt

    months = [(2026, 6), (2026, 7), (2026, 8)]
    stats = Stats(months)
    stats.received = {
        (2026, 6): Counter({"access": 40, "erasure": 9, "rectification": 5, "objection": 3}),
        (2026, 7): Counter({"access": 2}),
        (2026, 8): Counter({"erasure": 1}),
    }
    stats.on_time_by_month = {(2026, 6): 1.0, (2026, 7): 0.5, (2026, 8): 0.9}
    labels = {"title": "Requests", "received": "Received", "on_time": "On time, %"}
    names = {k: f"type {k}" for k in stats.received_by_type}
    figure = draw_chart(stats, labels, ["06", "07", "08"], names)
    try:
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
        [legend] = figure.legends
        box = legend.get_window_extent(renderer)
        bars, share = figure.axes
        assert len(bars.patches) == 4 * 3
        for patch in bars.patches:
            extent = patch.get_window_extent(renderer)
            if extent.width and extent.height:
                assert not box.overlaps(extent)
        [line] = share.get_lines()
        points = share.transData.transform(line.get_xydata())
        assert not any(box.contains(x, y) for x, y in points)
        assert not box.overlaps(bars.get_window_extent(renderer))  # below the axes
        for tick in bars.get_xticklabels():
            assert not box.overlaps(tick.get_window_extent(renderer))
    finally:
        plt.close(figure)


async def test_a_hold_on_a_request_without_a_bot_user_ends(
    bot: Harness, clock: FrozenClock
) -> None:
    """A legal hold ends by erasing the person's data in the bot: someone who does not use it
    has none, and the hold just ends (the request is closed), with no error."""
    await bot.app.reminders.stop()
    staff = bot.staff("Sam")
    number = (await api_more.register_external(bot.app, staff.id, form(type="erasure")))["id"]
    async with bot.app.sessions() as session:
        repo = Repositories(session)
        request = await repo.requests.get(number)
        assert request is not None
        request.status, request.hold_until = RequestStatus.BLOCKED, clock.now() + timedelta(days=1)
        await repo.commit()
    clock.advance(timedelta(days=2))
    assert await bot.app.erasure.release_holds(bot.app.bot) == 1
    request = await request_row(bot, number)
    assert request.status == RequestStatus.DONE and request.closed_at == clock.now()


@pytest.mark.parametrize("systems", [False, True])
async def test_an_erasure_without_a_bot_user_is_completed_on_its_card(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock, systems: bool
) -> None:
    """Nothing of theirs is in the bot, and the systems find people by their Telegram account:
    Done completes it (staff erase by hand), with the pack's systems too."""
    bot = Harness(fake, tmp_path, pack="gdpr_hosting", clock=clock, systems=systems)
    await bot.start()
    try:
        staff = bot.staff("Sam")
        body = form(type="erasure", identity_check="a signed letter")
        number = (await api_more.register_external(bot.app, staff.id, body))["id"]
        await bot.settle()
        await done(bot, staff, len(bot.cards()))
        request = await request_row(bot, number)
        assert request.status == RequestStatus.DONE and request.closed_at is not None
        async with bot.app.sessions() as session:
            assert await Repositories(session).jobs.of_request(number) == []
    finally:
        await bot.stop()
