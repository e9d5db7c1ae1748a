"""The desk app's API (bot.service.desk_app) on the real bot's web app, against the fake Bot
API: Telegram's init data checked (forged, expired, missing: 401; not staff: 403; nothing
read), the staff role and audit exactly as the card's, the table's filters and counts, a
request's timeline, actions through the card's domain services (the user told once, the card
edited), one decision when the card and the app decide at once; the security headers; nothing
personal in the logs; the card's "Open in the app" link; the staff menu button."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.service.web import create_web_app
from storage.models import AuditEntry
from tests.fake_telegram import TOKEN, FakeTelegram
from tests.kit import Harness
from tests.test_consents import onboarded
from tests.test_requests import file_erasure, stored
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
