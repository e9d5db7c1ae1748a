"""Webhook mode, /healthz and /metrics, against the real app and the fake Bot API server."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.core.clock import FrozenClock
from bot.core.errors import ConfigError
from bot.service import web
from bot.service.config import load_settings
from bot.service.metrics import Metrics
from storage.crypto import MasterKeys
from storage.db import create_engine, session_factory
from tests.fake_telegram import TOKEN, FakeTelegram
from tests.kit import Harness

SECRET = "s3cret-Token_for-webhooks"
HOOK = "https://bot.example.org/telegram/hook"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Served:
    """The app behind its HTTP server, as Telegram and a monitoring system see it."""

    def __init__(self, harness: Harness, port: int) -> None:
        self.h = harness
        self.base = f"http://127.0.0.1:{port}"

    async def post(self, update: dict[str, Any], secret: str | None) -> tuple[int, str]:
        headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.base}/telegram/hook", json=update, headers=headers) as response,
        ):
            return response.status, await response.text()

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as http, http.get(self.base + path) as response:
            return response.status, await response.text()


@pytest.fixture
async def served(fake: FakeTelegram, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Served]:
    port = free_port()
    harness = Harness(
        fake,
        tmp_path,
        clock=clock,
        webhook_url=HOOK,
        webhook_secret=SECRET,
        webhook_listen=f"127.0.0.1:{port}",
        outbox_stuck_after=300,
    )
    await harness.start()
    await harness.settle()  # what the start queued (the calendar-data warning) is sent first
    runner = await web.start_server(harness.app, "127.0.0.1", port)
    await web.set_webhook(harness.app)
    try:
        yield Served(harness, port)
    finally:
        await runner.cleanup()
        await harness.stop()


def start_update(fake: FakeTelegram, user_id: int = 4242) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": "Ann", "language_code": "en"}
    fake.add_private_chat(user)
    return {
        "update_id": fake.new_update_id(),
        "message": {
            "message_id": fake.next_message_id(user_id),
            "date": int(time.time()),
            "chat": fake.chats[user_id],
            "from": user,
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


async def test_webhook_is_set_with_the_secret_and_the_used_update_types(served: Served) -> None:
    hook = served.h.fake.webhook
    assert hook is not None
    assert hook["url"] == HOOK
    assert hook["secret_token"] == SECRET
    used = set(served.h.app.dispatcher.resolve_used_update_types())
    assert set(hook["allowed_updates"]) == used
    assert {"message", "callback_query", "chat_member"} <= used


async def test_a_request_without_the_secret_gets_401_and_is_not_processed(
    served: Served,
) -> None:
    fake = served.h.fake
    before = len(fake.calls)
    assert (await served.post(start_update(fake), None))[0] == 401
    assert (await served.post(start_update(fake), "wrong-secret"))[0] == 401
    assert len(fake.calls) == before  # nothing handled, nothing sent
    status, _ = await served.post(start_update(fake), SECRET)
    assert status == 200
    # Answered before the webhook call returned: the update was handled, not queued.
    assert any("How old are you?" in e.text for e in fake.events)


async def test_healthz_reports_a_stuck_outbox(served: Served, clock: FrozenClock) -> None:
    assert await served.get("/healthz") == (200, "ok\n")
    fake = served.h.fake
    await served.h.app.outbox.stop()  # only the passes below deliver
    # The group is unreachable for a while (a transient error: retried, so it stays pending).
    fake.fail("sendMessage", chat_id=served.h.app.admin_chat.id, status=502, times=100)
    ann = served.h.user("Ann")
    await ann.send("/start")
    await ann.tap("16 or older")
    await ann.send("/rights")
    await ann.tap("🔎 What do you hold about me?")
    await ann.tap("✅ Send the request")
    await served.h.app.outbox.run_once(served.h.app.bot)
    assert (await served.get("/healthz"))[0] == 200  # young enough
    clock.advance(timedelta(seconds=301))
    status, reason = await served.get("/healthz")
    assert status == 503
    assert reason.startswith("outbox stuck: oldest staff item 301 s old")


async def test_healthz_and_metrics_report_an_unreachable_admin_group(
    served: Served, clock: FrozenClock
) -> None:
    await served.h.bot_status("kicked", was="administrator")  # the bot removed from the group
    clock.advance(timedelta(hours=2))
    status, reason = await served.get("/healthz")
    assert (status, reason) == (
        503,
        "staff unreachable since 2026-11-23T09:00:00+00:00 (7200 s): kicked\n",
    )
    metrics = (await served.get("/metrics"))[1]
    assert "privacy_desk_staff_unreachable 1.0" in metrics
    assert "privacy_desk_staff_unreachable_seconds 7200.0" in metrics
    await served.h.bot_status("administrator", was="kicked")
    assert await served.get("/healthz") == (200, "ok\n")


async def test_healthz_reports_an_unreachable_database(tmp_path: Path, clock: FrozenClock) -> None:
    before = set(threading.enumerate())
    broken = create_engine(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db")
    metrics = Metrics(session_factory(broken, MasterKeys(b"k" * 32)), clock, timedelta(minutes=5))
    health = await metrics.health()
    assert not health.ok
    assert health.reason.startswith("database unreachable")
    await broken.dispose()
    # aiosqlite stops the failed connection's worker thread without waiting for it; the thread
    # then reports to this test's event loop, which must still be open (or the thread raises
    # "Event loop is closed" into a later test).
    async with asyncio.timeout(5):
        while any(t.is_alive() for t in set(threading.enumerate()) - before):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_metrics(served: Served, clock: FrozenClock) -> None:
    fake = served.h.fake
    await served.h.app.outbox.stop()  # nothing is delivered: the card and notices wait
    await served.post(start_update(fake, 111), SECRET)
    ann = served.h.user("Ann")
    await ann.send("/start")
    await ann.tap("16 or older")
    await ann.send("/rights")
    await ann.tap("🔎 What do you hold about me?")
    await ann.tap("✅ Send the request")
    clock.advance(timedelta(days=40))  # past due
    status, body = await served.get("/metrics")
    assert status == 200
    lines = body.splitlines()
    assert 'privacy_desk_updates_total{type="message"} 3.0' in lines
    assert 'privacy_desk_updates_total{type="callback_query"} 3.0' in lines
    assert any(line.startswith("privacy_desk_update_seconds_bucket{") for line in lines)
    assert 'privacy_desk_update_seconds_count{type="message"} 3.0' in lines
    assert "privacy_desk_requests_open 1.0" in lines
    assert "privacy_desk_requests_overdue 1.0" in lines
    backlog = next(line for line in lines if line.startswith("privacy_desk_outbox_backlog "))
    assert float(backlog.split()[1]) >= 1  # the card and the notices are not delivered yet
    oldest = next(line for line in lines if line.startswith("privacy_desk_outbox_oldest_seconds"))
    assert float(oldest.split()[1]) >= timedelta(days=40).total_seconds()
    assert 'privacy_desk_failed_deliveries{source="outbox"} 0.0' in lines
    assert 'privacy_desk_failed_deliveries{source="campaign"} 0.0' in lines
    assert TOKEN not in body


def test_webhook_settings() -> None:
    base = {
        "_env_file": None,
        "bot_token": "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef",
        "admin_chat_id": -1,
        "pseudonym_secret": "x" * 20,
    }
    plain = load_settings(**base)
    assert plain.webhook_url is None and plain.webhook_listen is None  # long polling
    hooked = load_settings(**base, webhook_url=HOOK, webhook_secret=SECRET)
    assert hooked.webhook_host_port == ("0.0.0.0", 8080)
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET is required with WEBHOOK_URL"):
        load_settings(**base, webhook_url=HOOK)
    with pytest.raises(ConfigError, match="WEBHOOK_URL must be a public https"):
        load_settings(**base, webhook_url="http://x/y", webhook_secret=SECRET)
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET must be 1-256"):
        load_settings(**base, webhook_url=HOOK, webhook_secret="has space")
    with pytest.raises(ConfigError, match="WEBHOOK_LISTEN must be host:port"):
        load_settings(**base, webhook_listen="8080")
    with pytest.raises(ConfigError, match="REDIS_URL must start with redis://"):
        load_settings(**base, redis_url="localhost:6379")
