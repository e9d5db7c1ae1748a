"""Webhook systems: the signed job to the operator's service (a local aiohttp server plays it)
and the signed callback on the bot's web server (the real app's route)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.core.clock import FrozenClock
from bot.core.errors import ConfigError
from bot.core.law import RequestType, Text
from bot.core.systems import System
from bot.delivery.systems.callback import (
    Endpoint,
    WebhookCallbacks,
    backoff,
    webhook_callbacks,
)
from bot.delivery.systems.webhook import (
    NO_CALLBACK,
    SIGNATURE_HEADER,
    WebhookConnector,
    sign,
    signed,
    system_callback_url,
)
from bot.domain.systems import Accepted, Correction, Done, Failed, Subject, Work, stored_done
from bot.service import config
from bot.service import web as bot_web
from bot.service.config import load_settings
from bot.service.logs import RedactSecrets, system_secrets
from bot.service.run import run
from storage.enums import JobStatus
from storage.repositories import Repositories
from tests.fake_telegram import FakeTelegram
from tests.kit import Harness

SECRET = "whsec-0123456789abcdef-for-tests"
OTHER_SECRET = "whsec-another-secret-entirely"
PHONE = "+375291234567"
NAME = "Anastasia Private"
SYSTEM = System(
    id="support",
    name=Text(ru="Support", en="Support"),
    kind="webhook",  # type: ignore[arg-type]
    categories=["contacts", "tickets"],
    url_env="SUPPORT_URL",
    secret_env="SUPPORT_SECRET",
)
OTHER = SYSTEM.model_copy(update={"id": "crm", "url_env": "CRM_URL", "secret_env": "CRM_SECRET"})
CALLBACK_BASE = "https://bot.example.org"
DUE = datetime(2026, 12, 23, 20, 59, tzinfo=UTC)


class Service:
    """The operator's service: checks each job's signature, records it, answers as scripted
    (a status and a JSON body, or "hang": no answer until the test ends)."""

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.bad_signatures = 0
        self.script: list[tuple[int | str, Any]] = []
        self.release = asyncio.Event()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not signed(SECRET, body, request.headers.get(SIGNATURE_HEADER)):
            self.bad_signatures += 1
            return web.Response(status=401)
        self.jobs.append(json.loads(body))
        self.headers.append(dict(request.headers))
        status, answer = self.script.pop(0) if self.script else (200, {})
        if status == "hang":
            await self.release.wait()
            status = 200
        if isinstance(answer, bytes):
            return web.Response(status=int(status), body=answer)
        return web.json_response(answer, status=int(status))


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    played = Service()
    app = web.Application()
    app.router.add_post("/jobs", played.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log=None)  # the test's own server logs the address
    played.url = str(server.make_url("/jobs"))
    try:
        yield played
    finally:
        played.release.set()
        await server.close()


def work(job_id: int = 7, action: RequestType = RequestType.ACCESS, **extra: Any) -> Work:
    return Work(
        job_id=job_id,
        action=action,
        subject=Subject(telegram_id=4242, phone=PHONE),
        request_id=12,
        due_at=DUE,
        **extra,
    )


def connector(
    service: Service, callback: str | None = CALLBACK_BASE, **kw: Any
) -> WebhookConnector:
    return WebhookConnector(SYSTEM, service.url, SECRET, callback, **kw)


async def test_the_job_is_signed_and_a_200_with_data_completes_it(service: Service) -> None:
    service.script = [
        (
            200,
            {
                "counts": {"contacts": 1, "tickets": 2},
                "data": {
                    "contacts": [{"email": "a@example.org"}],
                    "tickets": [{"subject": "Refund", "open": True}, {"subject": "Hi", "n": 2}],
                },
            },
        )
    ]
    hook = connector(service)
    try:
        outcome = await hook.run(work(correction=None))
    finally:
        await hook.close()
    assert outcome == Done(
        counts={"contacts": 1, "tickets": 2},
        found={
            "contacts": [{"source": "support", "fields": {"email": "a@example.org"}}],
            "tickets": [
                {"source": "support", "fields": {"subject": "Refund", "open": True}},
                {"source": "support", "fields": {"subject": "Hi", "n": 2}},
            ],
        },
    )
    assert service.bad_signatures == 0
    assert service.jobs == [
        {
            "job": 7,
            "request": 12,
            "type": "access",
            "identity": {"telegram_id": 4242, "phone": PHONE},
            "due": "2026-12-23",
            "correction": None,
            "restrict_until": None,
            "callback": "https://bot.example.org/systems/support/callback",
        }
    ]
    assert service.headers[0]["Idempotency-Key"] == "7"
    assert service.headers[0]["Content-Type"] == "application/json"


async def test_a_correction_and_a_restriction_are_sent_and_erasure_keeps_no_data(
    service: Service,
) -> None:
    until = datetime(2027, 3, 1, tzinfo=UTC)
    data = {"counts": {"contacts": 1}, "data": {"contacts": [{"email": "a@example.org"}]}}
    service.script = [(200, data), (200, {}), (200, data)]
    hook = connector(service, callback=None)
    try:
        fix = work(8, RequestType.RECTIFICATION, correction=Correction("first_name", "Ann"))
        assert await hook.run(fix) == Done(counts={"contacts": 1})  # no data kept
        assert await hook.run(work(9, RequestType.RESTRICTION, restrict_until=until)) == Done()
        erased = await hook.run(work(10, RequestType.ERASURE))
    finally:
        await hook.close()
    assert erased == Done(counts={"contacts": 1})
    assert service.jobs[0]["correction"] == {"field": "first_name", "value": "Ann"}
    assert service.jobs[0]["callback"] is None
    assert service.jobs[1]["restrict_until"] == "2027-03-01T00:00:00+00:00"
    assert service.jobs[2]["type"] == "erasure"


async def test_500_then_200_is_failed_then_done(service: Service) -> None:
    service.script = [(500, {"error": NAME}), (200, {"counts": {"tickets": 3}})]
    hook = connector(service)
    try:
        first = await hook.run(work())
        second = await hook.run(work())
    finally:
        await hook.close()
    assert first == Failed("the service answered HTTP 500")
    assert second == Done(counts={"tickets": 3})
    assert [job["job"] for job in service.jobs] == [7, 7]  # the same idempotency key


async def test_202_is_accepted_only_with_a_callback_url(service: Service) -> None:
    service.script = [(202, {}), (202, {})]
    with_url, without = connector(service), connector(service, callback=None)
    try:
        assert await with_url.run(work()) == Accepted()
        assert await without.run(work()) == Failed(NO_CALLBACK)
    finally:
        await with_url.close()
        await without.close()


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"<html>oops</html>", "the answer is not JSON"),
        ([1, 2], "bad result: the result is not a JSON object"),
        (
            {"counts": {"payments": 1}},
            "bad result: the result names a category that is not this system's",
        ),
        (
            {"data": {"billing": [{"card": "4111"}]}},
            "bad result: the result names a category that is not this system's",
        ),
        ({"counts": {"tickets": -1}}, "bad result: `counts` must map categories to whole numbers"),
        ({"counts": {"tickets": "2"}}, "bad result: `counts` must map categories to whole numbers"),
        (
            {"data": {"tickets": [{"nested": {"a": 1}}]}},
            "bad result: `data` must map categories to lists of flat objects",
        ),
        (
            {"data": {"tickets": "x"}},
            "bad result: `data` must map categories to lists of flat objects",
        ),
    ],
)
async def test_a_bad_result_is_failed(service: Service, answer: Any, reason: str) -> None:
    service.script = [(200, answer)]
    hook = connector(service)
    try:
        assert await hook.run(work()) == Failed(reason)
    finally:
        await hook.close()


async def test_a_timeout_and_a_refused_connection_are_failed(service: Service) -> None:
    service.script = [("hang", {})]
    hook = connector(service, timeout=0.3)
    try:
        assert await hook.run(work()) == Failed("no answer within 0.3 s (timeout)")
    finally:
        service.release.set()
        await hook.close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/jobs"
    nowhere = WebhookConnector(SYSTEM, closed, SECRET, None, timeout=2)
    try:
        assert await nowhere.run(work()) == Failed("the request failed (ClientConnectorError)")
        assert await nowhere.check() == [
            "support: the endpoint cannot be reached (ClientConnectorError)"
        ]
    finally:
        await nowhere.close()


async def test_a_redirect_is_not_followed(service: Service) -> None:
    async def moved(_: web.Request) -> web.Response:
        raise web.HTTPFound(service.url)

    app = web.Application()
    app.router.add_post("/old", moved)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    hook = WebhookConnector(SYSTEM, str(server.make_url("/old")), SECRET, None)
    try:
        assert await hook.run(work()) == Failed("the service answered HTTP 302")
    finally:
        await hook.close()
        await server.close()
    assert service.jobs == []


async def test_check_pings_signed_and_a_dry_run_asks_nothing(service: Service) -> None:
    service.script = [(200, {}), (503, {})]
    hook = connector(service)
    try:
        assert await hook.check() == []
        assert await hook.check() == ["support: the endpoint answered a ping with HTTP 503"]
        assert await hook.dry_run(Subject(4242)) == [
            "support: a webhook service is asked nothing in a dry run"
        ]
    finally:
        await hook.close()
    assert service.jobs == [{"ping": True}, {"ping": True}]
    assert service.bad_signatures == 0


async def test_nothing_of_the_url_secret_or_body_in_reasons_or_logs(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    leaky = {"error": f"{NAME} {PHONE}", "secret": SECRET}
    service.script = [
        (500, leaky),
        (200, b"not json " + NAME.encode()),
        (200, {"counts": {NAME: 1}}),
        ("hang", {}),
    ]
    hook = connector(service, timeout=0.3)
    reasons = []
    try:
        for _ in range(4):
            outcome = await hook.run(work())
            assert isinstance(outcome, Failed)
            reasons.append(outcome.reason)
    finally:
        service.release.set()
        await hook.close()
    said = " ".join(reasons) + caplog.text
    for value in (service.url, "127.0.0.1", SECRET, NAME, PHONE, "4242"):
        assert value not in said


async def test_the_callback_url_is_the_systems_path_under_the_base() -> None:
    assert system_callback_url(None, "crm") is None
    assert system_callback_url("https://b.org/", "crm") == "https://b.org/systems/crm/callback"
    full = "https://b.org/p/systems/crm/callback"
    assert system_callback_url(full, "crm") == full


def test_callbacks_are_built_for_connected_webhook_systems_only() -> None:
    env = {"SUPPORT_URL": "https://s.example.org", "SUPPORT_SECRET": SECRET, "CRM_URL": "x"}
    built = webhook_callbacks(None, FrozenClock(DUE), [SYSTEM, OTHER], env)  # type: ignore[arg-type]
    assert built is not None and built._endpoints.keys() == {"support"}
    assert webhook_callbacks(None, FrozenClock(DUE), [OTHER], env) is None  # type: ignore[arg-type]


# The callback, through the real app's web server.


class Desk:
    """The bot with the support system's callbacks, its web app under aiohttp's test client."""

    def __init__(self, harness: Harness, client: TestClient[Any, Any]) -> None:
        self.h = harness
        self.client = client

    async def job(self, status: JobStatus = JobStatus.WAITING, system: str = "support") -> int:
        """A job of user 4242 (a storage-limitation erasure: no request), moved to `status`."""
        now = self.h.app.clock.now()
        async with self.h.app.sessions() as session:
            repo = Repositories(session)
            if await repo.users.get(4242) is None:
                await repo.users.create(
                    4242, language="en", username=None, first_name=NAME, last_name=None, now=now
                )
            job = await repo.jobs.add(
                user_id=4242, request_id=None, system_id=system, action="access", now=now
            )
            if status is not JobStatus.PENDING:
                claimed = await repo.jobs.claim(now, skip_systems=[])
                assert claimed is not None and claimed.id == job.id
            if status is JobStatus.WAITING:
                assert await repo.jobs.wait_for_callback(claimed)
            await repo.commit()
            return job.id

    async def state(self, job_id: int) -> tuple[str, Done, str | None, datetime | None]:
        async with self.h.app.sessions() as session:
            job = await Repositories(session).jobs.get(job_id)
            assert job is not None
            return job.status, stored_done(job.data, job.counts), job.last_error, job.done_at

    async def call(
        self, body: bytes | dict[str, Any], *, secret: str | None = SECRET, system: str = "support"
    ) -> tuple[int, str]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {} if secret is None else {SIGNATURE_HEADER: sign(secret, raw)}
        response = await self.client.post(f"/systems/{system}/callback", data=raw, headers=headers)
        return response.status, await response.text()


@pytest.fixture
async def desk(bot: Harness) -> AsyncIterator[Desk]:
    endpoints = {"support": Endpoint(SYSTEM, SECRET), "crm": Endpoint(OTHER, OTHER_SECRET)}
    bot.app.callbacks = WebhookCallbacks(bot.app.sessions, bot.app.clock, endpoints)
    client = TestClient(TestServer(bot_web.create_web_app(bot.app), host="127.0.0.1"))
    await client.start_server()
    try:
        yield Desk(bot, client)
    finally:
        await client.close()


DONE = {
    "status": "done",
    "counts": {"tickets": 1},
    "data": {"tickets": [{"subject": "Refund", "from": PHONE}]},
}


async def test_a_202_then_a_signed_callback_completes_the_job(service: Service, desk: Desk) -> None:
    job_id = await desk.job(JobStatus.RUNNING)
    service.script = [(202, {})]
    hook = WebhookConnector(SYSTEM, service.url, SECRET, str(desk.client.make_url("")))
    try:
        assert await hook.run(work(job_id)) == Accepted()
    finally:
        await hook.close()
    async with desk.h.app.sessions() as session:
        repo = Repositories(session)
        job = await repo.jobs.get(job_id)
        assert job is not None and await repo.jobs.wait_for_callback(job)
        await repo.commit()
    # The service calls back where the job told it to, signed the same way.
    callback = service.jobs[0]["callback"]
    assert callback.endswith("/systems/support/callback")
    raw = json.dumps({"job": job_id, **DONE}).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.post(callback, data=raw, headers={SIGNATURE_HEADER: sign(SECRET, raw)}) as r,
    ):
        assert r.status == 200
    status, done, error, done_at = await desk.state(job_id)
    assert status == JobStatus.DONE and error is None
    assert done_at == desk.h.app.clock.now()
    assert done.counts == {"tickets": 1}
    assert done.found == {
        "tickets": [{"source": "support", "fields": {"subject": "Refund", "from": PHONE}}]
    }


async def test_a_callback_with_a_wrong_or_no_signature_changes_nothing(desk: Desk) -> None:
    job_id = await desk.job()
    body = {"job": job_id, **DONE}
    assert (await desk.call(body, secret=OTHER_SECRET))[0] == 401
    assert (await desk.call(body, secret=None))[0] == 401
    raw = json.dumps(body).encode()
    forged = raw.replace(b'"tickets": 1', b'"tickets": 9')
    response = await desk.client.post(
        "/systems/support/callback", data=forged, headers={SIGNATURE_HEADER: sign(SECRET, raw)}
    )
    assert response.status == 401
    assert (await desk.call(body, system="nowhere"))[0] == 404
    assert (await desk.state(job_id))[0] == JobStatus.WAITING


async def test_a_replayed_callback_changes_nothing(desk: Desk) -> None:
    job_id = await desk.job()
    body = {"job": job_id, **DONE}
    assert await desk.call(body) == (200, "recorded\n")
    first = await desk.state(job_id)
    desk.h.app.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    assert await desk.call(body) == (200, "already done\n")
    assert await desk.call({**body, "counts": {"tickets": 5}, "data": {}}) == (
        200,
        "already done\n",
    )
    assert await desk.state(job_id) == first
    # A "failed" after the job is done is refused too.
    assert (await desk.call({"job": job_id, "status": "failed"}))[0] == 409
    assert await desk.state(job_id) == first


async def test_a_callback_for_a_job_of_another_system_or_not_waiting_is_409(desk: Desk) -> None:
    other = await desk.job(system="crm")
    pending = await desk.job(JobStatus.PENDING)
    assert (await desk.call({"job": other, **DONE}))[0] == 409
    assert (await desk.call({"job": pending, **DONE}))[0] == 409
    assert (await desk.call({"job": 99999, **DONE}))[0] == 404
    assert (await desk.state(other))[0] == JobStatus.WAITING
    assert (await desk.state(pending))[0] == JobStatus.PENDING


async def test_a_callback_before_the_202_is_recorded_completes_the_job(desk: Desk) -> None:
    job_id = await desk.job(JobStatus.RUNNING)
    assert (await desk.call({"job": job_id, **DONE}))[0] == 200
    assert (await desk.state(job_id))[0] == JobStatus.DONE


async def test_a_bad_callback_body_is_400_and_changes_nothing(desk: Desk) -> None:
    job_id = await desk.job()
    foreign = {"job": job_id, "status": "done", "data": {"billing": [{"card": "4111"}]}}
    assert await desk.call(foreign) == (
        400,
        "the result names a category that is not this system's\n",
    )
    assert (await desk.call(b"not json"))[0] == 400
    assert (await desk.call({"job": str(job_id), "status": "done"}))[0] == 400
    assert (await desk.call({"job": job_id, "status": "maybe"}))[0] == 400
    assert (await desk.state(job_id))[0] == JobStatus.WAITING


async def test_a_callback_over_a_megabyte_is_413(desk: Desk) -> None:
    job_id = await desk.job()
    big = {"job": job_id, **DONE, "padding": "x" * (1024 * 1024)}
    assert (await desk.call(big))[0] == 413
    assert (await desk.state(job_id))[0] == JobStatus.WAITING


async def test_a_failed_callback_sends_the_job_again_later(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    now = desk.h.app.clock.now()
    coded, free = await desk.job(), await desk.job()
    assert (await desk.call({"job": coded, "status": "failed", "reason": "account_locked"}))[
        0
    ] == 200
    reason = f"{NAME} has no account, call {PHONE}"
    assert (await desk.call({"job": free, "status": "failed", "reason": reason}))[0] == 200
    async with desk.h.app.sessions() as session:
        repo = Repositories(session)
        first, second = await repo.jobs.get(coded), await repo.jobs.get(free)
        assert first is not None and second is not None
        assert first.status == second.status == JobStatus.PENDING
        assert first.last_error == "the service reported a failure (account_locked)"
        assert second.last_error == "the service reported a failure"
        # Retried as the worker retries a failure (one backoff for both).
        assert first.next_attempt_at == now + backoff(1) == now + timedelta(seconds=30)
        # The worker sends it again when it is due.
        assert await repo.jobs.claim(now, skip_systems=[]) is None
        assert await repo.jobs.claim(now + timedelta(seconds=30), skip_systems=[]) is not None
    assert NAME not in caplog.text and PHONE not in caplog.text


async def test_a_job_failing_past_the_limit_waits_for_staff(desk: Desk) -> None:
    job_id = await desk.job()
    desk.h.app.callbacks._give_up_after = 1  # type: ignore[union-attr]
    assert (await desk.call({"job": job_id, "status": "failed"}))[0] == 200
    assert (await desk.state(job_id))[0] == JobStatus.FAILED


def test_backoff_is_capped() -> None:
    minutes = [backoff(n).total_seconds() / 60 for n in (1, 2, 3, 7, 8, 20)]
    assert minutes == [0.5, 1, 2, 32, 60, 60]


async def test_without_webhook_systems_every_callback_is_404(bot: Harness) -> None:
    assert bot.app.callbacks is None
    client = TestClient(TestServer(bot_web.create_web_app(bot.app), host="127.0.0.1"))
    await client.start_server()
    try:
        raw = b'{"job": 1, "status": "done"}'
        response = await client.post(
            "/systems/support/callback", data=raw, headers={SIGNATURE_HEADER: sign(SECRET, raw)}
        )
        assert response.status == 404
    finally:
        await client.close()


def test_systems_callback_url_setting() -> None:
    base = {
        "_env_file": None,
        "bot_token": "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef",
        "admin_chat_id": -1,
        "pseudonym_secret": "x" * 20,
    }
    assert load_settings(**base).systems_callback_url is None
    assert load_settings(**base, systems_callback_url="").systems_callback_url is None
    chosen = load_settings(**base, systems_callback_url=CALLBACK_BASE)
    assert chosen.systems_callback_url == CALLBACK_BASE
    with pytest.raises(ConfigError, match="SYSTEMS_CALLBACK_URL must be a public https"):
        load_settings(**base, systems_callback_url="http://bot.example.org")


async def test_polling_serves_the_callbacks_when_a_webhook_system_is_connected(
    fake: FakeTelegram,
    tmp_path: Path,
    service: Service,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(config, "DEFAULT_LISTEN", f"127.0.0.1:{port}")  # no WEBHOOK_LISTEN set
    monkeypatch.setenv("SUPPORT_URL", service.url)
    monkeypatch.setenv("SUPPORT_SECRET", SECRET)
    harness = Harness(fake, tmp_path)
    assert harness.settings.webhook_listen is None and harness.settings.webhook_url is None
    pack = harness.pack.model_copy(
        update={
            "systems": [SYSTEM],
            "categories": {c: Text(ru=c, en=c) for c in SYSTEM.categories},
        }
    )
    running = asyncio.create_task(run(harness.settings, pack))
    url = f"http://127.0.0.1:{port}/systems/support/callback"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with http.post(url, data=b"{}") as response:
                        assert response.status == 401  # served, and the signature is checked
                        break
                assert not running.done()
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the web server did not start")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


def test_the_systems_urls_and_secrets_are_kept_out_of_logs() -> None:
    sql = System(
        id="accounts",
        name=Text(ru="Accounts", en="Accounts"),
        kind="sql",  # type: ignore[arg-type]
        categories=["contacts"],
        url_env="ACCOUNTS_URL",
        tables=[
            {
                "name": "users",
                "identity": {"kind": "telegram_id", "column": "tg"},
                "fields": [{"column": "email", "category": "contacts"}],
            }
        ],  # type: ignore[list-item]
    )
    env = {
        "SUPPORT_URL": "https://s.example.org/jobs",
        "SUPPORT_SECRET": SECRET,
        "ACCOUNTS_URL": "postgresql+asyncpg://app:p%40ss@db/app",
    }
    found = system_secrets([SYSTEM, OTHER, sql], env)
    assert set(found) == {*env.values(), "p%40ss", "p@ss"}
    record = logging.LogRecord("x", logging.INFO, "", 0, "posting to %s with %s", None, None)
    record.args = (env["SUPPORT_URL"], SECRET)
    RedactSecrets(found).filter(record)
    assert record.getMessage() == "posting to <redacted> with <redacted>"
