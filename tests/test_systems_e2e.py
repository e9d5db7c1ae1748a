"""End to end through the bot with the shipped hosting pack's demo systems, each real: the
customer-account database (SQLite, made by `storage.external.demo`, queried directly to check),
the support service behind a webhook (a local aiohttp server that checks every job's signature)
and the billing system, done by hand. A person files access, then erasure; staff approve from
the card; the worker carries each out; the card's checklist at each step; the answer holds the
rows of each system; the rows are gone or pseudonymised; a database down for hours, then back."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.core.clock import FrozenClock
from bot.core.errors import ConfigError
from bot.delivery.systems.webhook import SIGNATURE_HEADER, sign, signed
from bot.delivery.systems.worker import SystemsWorker
from bot.domain.erasure import pseudonym
from bot.service.web import create_web_app
from storage.enums import JobStatus, RequestStatus
from storage.external.demo import DEMO_PEOPLE, create_demo
from storage.repositories import Repositories
from tests.fake_telegram import FakeTelegram
from tests.kit import ADMIN_CHAT_ID, Harness, Person
from tests.test_consents import onboarded
from tests.test_execution import last_export
from tests.test_requests import file_erasure

SECRET = "e2e-support-secret"
ANNA = DEMO_PEOPLE[0]  # Anna Ivanova, Telegram ID 5550001, in the demo account database


class Support:
    """The operator's support service: checks each job's signature, records it, answers 200
    with the tickets it holds (access) or nothing (erasure)."""

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []
        self.refused = 0
        self.script: list[int] = []  # statuses to answer first (then 200)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not signed(SECRET, body, request.headers.get(SIGNATURE_HEADER)):
            self.refused += 1
            return web.Response(status=401)
        job = json.loads(body)
        if "ping" in job:
            return web.json_response({})
        self.jobs.append(job)
        if self.script:
            return web.Response(status=self.script.pop(0))
        if job["type"] == "access":
            tickets = [{"subject": "VPS reboot", "opened": "2024-05-02"}]
            return web.json_response({"data": {"correspondence": tickets}})
        return web.json_response({"counts": {"correspondence": 1}})


@pytest.fixture
async def support() -> AsyncIterator[tuple[Support, str]]:
    played = Support()
    app = web.Application()
    app.router.add_post("/jobs", played.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log=None)
    try:
        yield played, str(server.make_url("/jobs"))
    finally:
        await server.close()


def not_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's own loop does not run: the test runs its passes (bot.app.systems.drain)."""

    async def idle(self: SystemsWorker, bot: object) -> None:
        return None

    monkeypatch.setattr(SystemsWorker, "start", idle)


@pytest.fixture
async def desk(
    fake: FakeTelegram,
    tmp_path: Path,
    clock: FrozenClock,
    support: tuple[Support, str],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Harness]:
    folder = tmp_path / "accounts"
    folder.mkdir()
    url = f"sqlite+aiosqlite:///{folder / 'accounts.db'}"
    engine = create_async_engine(url)
    await create_demo(engine, "gdpr_hosting.accounts")
    await engine.dispose()
    monkeypatch.setenv("HOSTING_ACCOUNTS_DB_URL", url)
    monkeypatch.setenv("HOSTING_SUPPORT_WEBHOOK_URL", support[1])
    monkeypatch.setenv("HOSTING_SUPPORT_WEBHOOK_SECRET", SECRET)
    not_started(monkeypatch)
    harness = Harness(fake, tmp_path, pack="gdpr_hosting", clock=clock, systems=True)
    await harness.start()
    await harness.app.systems.stop()
    yield harness
    await harness.stop()


async def accounts(bot: Harness, sql: str) -> list[tuple[Any, ...]]:
    """The demo account database, read directly."""
    import os

    engine = create_async_engine(os.environ["HOSTING_ACCOUNTS_DB_URL"])
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(text(sql))]
    finally:
        await engine.dispose()


def card_text(bot: Harness) -> str:
    card = bot.cards()[-1]
    return str(bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]["text"])


async def work(bot: Harness) -> None:
    await bot.app.systems.drain(bot.app.bot)
    await bot.settle()


async def status_of(bot: Harness, number: int) -> dict[str, str]:
    async with bot.app.sessions() as session:
        repo = Repositories(session)
        request = await repo.requests.get(number)
        jobs = {job.system_id: job.status for job in await repo.jobs.of_request(number)}
    return {"request": request.status if request else "gone", **jobs}


async def tick_billing(sam: Person, note: str) -> None:
    await sam.tap("☑️ Сделано вручную: Биллинговая система ActivePlatform")
    await sam.reply_to(sam.expect("Биллинговая система ActivePlatform"), note)


async def test_access_then_erasure_through_every_demo_system(
    desk: Harness, support: tuple[Support, str]
) -> None:
    service, _ = support
    anna = await onboarded(desk, "Anna", user_id=ANNA.telegram_id)
    sam = desk.staff("Sam")
    await anna.send("/rights")
    await anna.tap("🔎 What do you hold about me?")
    await anna.tap("✅ Send the request")
    await desk.settle()
    access = desk.cards()[-1]
    number = int(re.search(r"№\s?(\d+)", card_text(desk)).group(1))  # type: ignore[union-attr]
    await sam.tap("✅ Выполнено")
    await desk.settle()
    checklist = card_text(desk)
    assert "⏳ Личный кабинет my.active.by: ожидает" in checklist
    assert "⏳ Служба поддержки (ServiceDesk, Kayako): ожидает" in checklist
    assert "✋ Биллинговая система ActivePlatform: выполнить вручную" in checklist

    await work(desk)
    checklist = card_text(desk)
    assert "✅ Личный кабинет my.active.by: выполнено" in checklist
    assert "✅ Служба поддержки (ServiceDesk, Kayako): выполнено" in checklist
    assert await status_of(desk, number) == {
        "request": RequestStatus.CARRYING_OUT,
        "accounts": JobStatus.DONE,
        "support": JobStatus.DONE,
        "billing": JobStatus.MANUAL,
    }
    told = len(anna.inbox)
    assert [j["type"] for j in service.jobs] == ["access"]
    assert service.jobs[0]["identity"]["telegram_id"] == ANNA.telegram_id

    await tick_billing(sam, "Exported from ActivePlatform, nothing beyond the account")
    await work(desk)
    assert "✅ Биллинговая система ActivePlatform: выполнено вручную" in card_text(desk)
    assert (await status_of(desk, number))["request"] == RequestStatus.DONE
    answer = "\n".join(e.text for e in anna.inbox[told:])
    for held in ("anna@example.com", "Ivanova", "INV-000001", "VPS reboot", "anna1.by"):
        assert held in answer, held
    assert "Customer account at my.active.by" in answer and "Support (ServiceDesk" in answer
    export = last_export(desk, anna)
    parts = {part["system"]: part for part in export["systems"]}  # type: ignore[attr-defined]
    assert export["version"] == 2 and set(parts) == {"accounts", "support", "billing"}
    assert parts["billing"]["by_hand"] and parts["support"]["categories"]["correspondence"]
    assert desk.cards()[-1].message_id == access.message_id

    # Erasure: the account database, the support service and the billing system, then the bot.
    erasure = await file_erasure(desk, anna)
    await desk.settle()
    await sam.tap("✅ Выполнено")
    await work(desk)
    assert await status_of(desk, erasure) == {
        "request": RequestStatus.CARRYING_OUT,
        "accounts": JobStatus.DONE,
        "support": JobStatus.DONE,
        "billing": JobStatus.MANUAL,
    }
    assert await accounts(desk, "SELECT count(*) FROM services WHERE account_id = 1") == [(0,)]
    assert await accounts(desk, "SELECT count(*) FROM orders WHERE account_id = 1") == [(0,)]
    [(tg, first, email)] = await accounts(
        desk, "SELECT telegram_id, first_name, email FROM accounts WHERE id = 1"
    )
    assert tg is None and first is None and re.fullmatch(r"[0-9a-f]{64}", email)
    [(payer, address, amount)] = await accounts(
        desk, "SELECT payer_name, payer_address, amount FROM invoices WHERE account_id = 1"
    )
    assert re.fullmatch(r"[0-9a-f]{64}", payer) and address == "[erased]" and amount is not None
    # The other demo people are untouched.
    assert await accounts(desk, "SELECT count(*) FROM services WHERE account_id = 2") == [(2,)]
    assert [j["type"] for j in service.jobs] == ["access", "erasure"]  # one signed job each
    assert service.refused == 0
    # Nobody but the service may answer for it: a callback signed with another key is refused.
    async with TestClient(TestServer(create_web_app(desk.app))) as client:
        body = json.dumps({"job": 1, "status": "done"}).encode()
        forged = await client.post(
            "/systems/support/callback", data=body, headers={SIGNATURE_HEADER: sign("x", body)}
        )
        assert forged.status == 401
    # The person is not told before the billing system is done by hand.
    assert not any("erase" in e.text.lower() and "done" in e.text.lower() for e in anna.inbox)
    await tick_billing(sam, "Deleted in ActivePlatform; invoices kept by accounting law")
    await work(desk)
    assert (await status_of(desk, erasure))["request"] == "gone"  # the bot forgot Anna too
    assert "erased" in anna.inbox[-1].text.lower() or "удален" in anna.inbox[-1].text.lower()


async def test_a_database_down_for_hours_then_back_completes_once(
    desk: Harness, support: tuple[Support, str], clock: FrozenClock, tmp_path: Path
) -> None:
    anna = await onboarded(desk, "Anna", user_id=ANNA.telegram_id)
    sam = desk.staff("Sam")
    support[0].script = [500, 500]  # the support service fails twice, then answers
    number = await file_erasure(desk, anna)
    await desk.settle()
    folder = tmp_path / "accounts"
    folder.rename(tmp_path / "away")  # the database is down
    await sam.tap("✅ Выполнено")
    await work(desk)
    for _ in range(8):  # two hours and more of retries
        clock.advance(timedelta(minutes=20))
        await work(desk)
    jobs = await status_of(desk, number)
    assert jobs["accounts"] in (JobStatus.PENDING, JobStatus.FAILED)
    assert jobs["support"] == JobStatus.DONE  # a failing system never held the other one
    assert "Личный кабинет my.active.by" in card_text(desk)
    (tmp_path / "away").rename(folder)  # back
    for _ in range(6):
        clock.advance(timedelta(hours=1))
        await work(desk)
        if (await status_of(desk, number))["accounts"] == JobStatus.DONE:
            break
    else:
        await sam.tap("🔁 Повторить: Личный кабинет my.active.by")
        await work(desk)
    assert (await status_of(desk, number))["accounts"] == JobStatus.DONE
    assert await accounts(desk, "SELECT count(*) FROM services WHERE account_id = 1") == [(0,)]
    [(payer,)] = await accounts(desk, "SELECT payer_name FROM invoices WHERE account_id = 1")
    assert re.fullmatch(r"[0-9a-f]{64}", payer)
    assert [j["type"] for j in support[0].jobs].count("erasure") == 3  # 500, 500, 200


async def test_a_pack_naming_a_missing_column_stops_the_start_with_one_line(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'accounts.db'}"
    engine = create_async_engine(url)
    await create_demo(engine, "gdpr_hosting.accounts")
    async with engine.begin() as connection:
        await connection.execute(text("ALTER TABLE orders DROP COLUMN item"))
    await engine.dispose()
    monkeypatch.setenv("HOSTING_ACCOUNTS_DB_URL", url)
    not_started(monkeypatch)
    harness = Harness(fake, tmp_path, pack="gdpr_hosting", clock=clock, systems=True)
    with pytest.raises(ConfigError) as raised:
        await harness.start()
    problems = str(raised.value).splitlines()[1:]
    assert len(problems) == 1 and "orders" in problems[0] and "item" in problems[0]
    assert "sqlite" not in str(raised.value) and str(tmp_path) not in str(raised.value)


async def test_an_erasure_is_passed_on_to_each_recipient_and_the_register_says_so(
    desk: Harness,
) -> None:
    """GDPR art. 19: each recipient the data was disclosed to (once per recipient) is an item
    staff tick when told; the request ends only then, and the erasure record keeps who was told."""
    anna = await onboarded(desk, "Anna", user_id=ANNA.telegram_id)
    sam = desk.staff("Sam")
    await sam.send(f'/disclose {anna.id} "Tax office" "name" "legal obligation"')
    await sam.send(f'/disclose {anna.id} "tax office " "phone" "legal obligation"')
    await sam.send(f'/disclose {anna.id} "Court" "correspondence" "court order"')
    number = await file_erasure(desk, anna)
    await desk.settle()
    await sam.tap("✅ Выполнено")
    await work(desk)
    checklist = card_text(desk)
    assert checklist.count("Сообщить получателю: ") == 2  # the tax office once, the court
    assert "✋ Сообщить получателю: Tax office: выполнить вручную" in checklist
    await tick_billing(sam, "Deleted in ActivePlatform")
    await work(desk)
    assert (await status_of(desk, number))["request"] == RequestStatus.CARRYING_OUT
    for who, note in (("Tax office", "Letter 12/7 sent"), ("Court", "Told by e-mail")):
        await sam.tap(f"☑️ Сделано вручную: Сообщить получателю: {who}")
        await sam.reply_to(sam.expect(who), note)
    await work(desk)
    assert (await status_of(desk, number))["request"] == "gone"
    async with desk.app.sessions() as session:
        key = pseudonym(desk.settings.pseudonym_secret.get_secret_value(), anna.id)
        records = await Repositories(session).erasure.records(key)
    told = [
        s
        for r in records
        for s in json.loads(r.detail).get("systems", [])
        if str(s.get("system", "")).startswith("recipient:")
    ]
    assert len(told) == 2 and all(s["status"] == JobStatus.DONE and s["by"] for s in told)
