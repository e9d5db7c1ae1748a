"""Requests carried out in the operator's systems, through the real bot with fake connectors
(tests/systems_kit.py): approval creates the jobs, the worker runs them, the card's checklist,
retry, tick, a DPO's completion, forged buttons, erasure at the end, holds, two workers, crash
points, systems not connected and a start stopped by a check."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.core.errors import ConfigError
from bot.delivery.systems import worker as worker_module
from bot.delivery.systems.callback import Endpoint, WebhookCallbacks
from bot.delivery.systems.registry import UNCONNECTED_KEY
from bot.delivery.systems.webhook import sign
from bot.delivery.systems.worker import SystemsWorker
from bot.domain.erasure import pseudonym
from bot.domain.systems import Accepted, Failed
from storage.enums import JobStatus, OutboxKind, RecordKind, RequestStatus
from storage.models import AuditEntry, OutboxItem, Request, User
from storage.models_systems import SystemJob
from storage.repositories import Repositories
from tests.fake_telegram import FakeTelegram
from tests.kit import ADMIN_CHAT_ID, PSEUDONYM_SECRET, Harness, Person
from tests.systems_kit import ENV, FakeSystems, write_systems_pack
from tests.test_consents import onboarded
from tests.test_requests import file_erasure
from tests.test_shared_work import file_access


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> FakeSystems:
    """The fake systems; the worker's own loop does not start: the tests run its passes (a
    loop stopped mid-job would leave the job to the lease)."""

    async def not_started(self: SystemsWorker, bot: object) -> None:
        return None

    monkeypatch.setattr(SystemsWorker, "start", not_started)
    return FakeSystems()


def systems_bot(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock, fakes: FakeSystems
) -> Harness:
    harness = Harness(
        fake, tmp_path, pack=str(write_systems_pack(tmp_path)), clock=clock, systems=True
    )
    harness.factory = fakes.factory()
    return harness


@pytest.fixture
async def desk(
    fake: FakeTelegram,
    tmp_path: Path,
    clock: FrozenClock,
    fakes: FakeSystems,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Harness]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    harness = systems_bot(fake, tmp_path, clock, fakes)
    await harness.start()
    await harness.app.systems.stop()  # the tests run the worker's passes themselves
    yield harness
    await harness.stop()


async def jobs_of(bot: Harness, request_id: int) -> dict[str, SystemJob]:
    async with bot.app.sessions() as session:
        jobs = await Repositories(session).jobs.of_request(request_id)
    return {job.system_id: job for job in jobs}


async def stored(bot: Harness, request_id: int) -> Request | None:
    async with bot.app.sessions() as session:
        return await session.get(Request, request_id)


def card_text(bot: Harness) -> str:
    card = bot.cards()[-1]
    return str(bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]["text"])


def card_buttons(bot: Harness) -> list[str]:
    card = bot.cards()[-1]
    markup = bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)].get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


async def work(bot: Harness) -> None:
    """The systems' worker, then the outbox, until nothing is due."""
    await bot.app.systems.drain(bot.app.bot)
    await bot.settle()


async def approved_erasure(bot: Harness) -> tuple[Person, Person, int]:
    ann = await onboarded(bot, "Ann")
    sam = bot.staff("Sam")
    number = await file_erasure(bot, ann)
    await bot.settle()
    await sam.tap("✅ Выполнено")
    return ann, sam, number


async def test_an_erasure_is_carried_out_in_every_system_before_the_bot_forgets(
    desk: Harness, fakes: FakeSystems
) -> None:
    ann, sam, number = await approved_erasure(desk)
    # The approval: the request and its jobs, committed together.
    request = await stored(desk, number)
    assert request is not None and request.status == RequestStatus.CARRYING_OUT
    jobs = await jobs_of(desk, number)
    assert {k: j.status for k, j in jobs.items()} == {
        "crm": JobStatus.PENDING,
        "helpdesk": JobStatus.PENDING,
        "archive": JobStatus.MANUAL,
    }
    await desk.settle()
    text = card_text(desk)
    assert "⚙️ исполняется в системах оператора" in text
    assert "⏳ Клиентская база: ожидает" in text
    assert "✋ Бумажный архив: выполнить вручную" in text
    assert "✅ Выполнено" not in card_buttons(desk)  # the old buttons are gone
    assert "☑️ Сделано вручную: Бумажный архив" in card_buttons(desk)
    # The old Done, pressed again (an older card), changes nothing.
    await sam.tap_data(f"v1req:{number}:done")
    assert (await stored(desk, number)).status == RequestStatus.CARRYING_OUT  # type: ignore[union-attr]

    await work(desk)
    [crm] = fakes.ran("crm")
    assert crm.subject.telegram_id == ann.id and crm.subject.phone == "+375291234567"
    assert crm.request_id == number and crm.due_at is not None
    text = card_text(desk)
    assert "✅ Клиентская база: выполнено (1 строка прочитана или изменена)" in text
    assert "✋ Бумажный архив: выполнить вручную" in text
    # The manual system still owes its part: the person is not erased, not told.
    async with desk.app.sessions() as session:
        assert await session.get(User, ann.id) is not None
    assert not any("erasure request is done" in e.text for e in ann.inbox)

    await sam.tap("☑️ Сделано вручную: Бумажный архив")
    prompt = sam.expect("что сделано вручную в системе Бумажный архив")
    await sam.reply_to(prompt, "Folder shredded, box 12")
    sam.expect("Записано как сделанное вручную")
    await work(desk)
    assert "Your erasure request is done" in ann.inbox[-1].text
    async with desk.app.sessions() as session:
        repo = Repositories(session)
        assert await session.get(User, ann.id) is None
        records = await repo.erasure.records(pseudonym(PSEUDONYM_SECRET, ann.id))
        audit = list(await session.scalars(select(AuditEntry.action)))
    [kept] = [json.loads(r.detail) for r in records if r.kind == RecordKind.REQUEST]
    outcome = {s["system"]: s for s in kept["systems"]}
    assert outcome["archive"]["status"] == "done" and outcome["archive"]["by"] == sam.id
    assert outcome["crm"]["status"] == "done" and outcome["crm"]["by"] is None
    assert "request.job_ticked" in audit and "request.tick" in audit


async def test_a_failing_system_is_retried_then_shown_failed_and_retried_by_staff(
    desk: Harness, fakes: FakeSystems, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "MAX_ATTEMPTS", 2)
    fakes.outcomes["crm"] = [Failed("database unreachable"), RuntimeError("postgres://u:pw@h")]
    _, sam, number = await approved_erasure(desk)
    await work(desk)
    jobs = await jobs_of(desk, number)
    # The failing system holds nobody else: the webhook system is done.
    assert jobs["helpdesk"].status == JobStatus.DONE
    assert jobs["crm"].status == JobStatus.PENDING and jobs["crm"].attempts == 1
    assert "will retry (database unreachable)" in card_text(desk) or "будет повторено" in (
        card_text(desk)
    )
    clock.advance(worker_module.backoff(1))
    await work(desk)
    jobs = await jobs_of(desk, number)
    assert jobs["crm"].status == JobStatus.FAILED
    assert jobs["crm"].last_error == "error: RuntimeError"  # never the exception's text
    assert "❌ Клиентская база: ошибка (error: RuntimeError)" in card_text(desk)
    notices = [e.text for e in desk.fake.events if "больше не повторяется" in e.text]
    assert len(notices) == 1 and "pw@" not in notices[0]
    await sam.tap("🔁 Повторить: Клиентская база")
    await work(desk)
    assert (await jobs_of(desk, number))["crm"].status == JobStatus.DONE
    assert len([w for w in fakes.ran("crm")]) == 3


async def test_a_dpo_completes_with_an_explanation_and_an_agent_may_not(
    desk: Harness, fakes: FakeSystems
) -> None:
    ann, sam, number = await approved_erasure(desk)
    agent = desk.staff("Al", status="member")
    await sam.send(f"/role {agent.id} agent")
    fakes.outcomes["crm"] = [Failed("down")] * 20
    await work(desk)
    await agent.tap("📝 Завершить с пояснением (DPO)")
    agent.expect("DPO")
    assert (await stored(desk, number)).status == RequestStatus.CARRYING_OUT  # type: ignore[union-attr]
    await sam.tap("📝 Завершить с пояснением (DPO)")
    prompt = sam.expect("что не сделано в системах")
    await sam.reply_to(prompt, "The CRM was decommissioned; the archive holds nothing")
    await work(desk)
    jobs = await jobs_of(desk, number) if await stored(desk, number) else {}
    assert jobs == {}  # erased with the person once nothing was owed
    assert "Your erasure request is done" in ann.inbox[-1].text
    async with desk.app.sessions() as session:
        actions = list(await session.scalars(select(AuditEntry.action)))
        records = await Repositories(session).erasure.records(pseudonym(PSEUDONYM_SECRET, ann.id))
    assert "request.completed_explained" in actions
    [kept] = [json.loads(r.detail) for r in records if r.kind == RecordKind.REQUEST]
    assert {s["system"]: s["status"] for s in kept["systems"]} == {
        "crm": "cancelled",
        "helpdesk": "done",
        "archive": "cancelled",
    }


async def test_forged_checklist_buttons_change_nothing(desk: Harness) -> None:
    _ann, sam, number = await approved_erasure(desk)
    bob = await onboarded(desk, "Bob")
    other = await file_erasure(desk, bob)
    jobs = await jobs_of(desk, number)
    archive = jobs["archive"].id
    for data in (
        f"v1job:{other}:{archive}:tick",  # a job of another request
        f"v1job:{number}:999999:tick",  # no such job
        f"v1job:{number}:{jobs['crm'].id}:tick",  # not a manual job
        f"v1job:{number}:{archive}:retry",  # not a failed job
        f"v1req:{other}:complete_explained",  # a request not being carried out
    ):
        await sam.tap_data(data)
        sam.expect("больше не относится")
    assert (await jobs_of(desk, number))["archive"].status == JobStatus.MANUAL
    assert (await stored(desk, other)).status == RequestStatus.RECEIVED  # type: ignore[union-attr]


async def test_a_legal_hold_stops_erasure_jobs(
    desk: Harness, clock: FrozenClock, fakes: FakeSystems
) -> None:
    ann = await onboarded(desk, "Ann")
    sam = desk.staff("Sam")
    first = await file_erasure(desk, ann)
    await desk.settle()
    await sam.tap("🔒 Заблокировать")
    prompt = sam.expect("до которой закон требует хранить")
    await sam.reply_to(prompt, "31.12.2027 tax records")
    second = await file_erasure(desk, ann, "Again")
    await desk.settle()
    await sam.tap_data(f"v1req:{second}:done")
    await work(desk)
    jobs = await jobs_of(desk, second)
    assert jobs["crm"].status == JobStatus.PENDING and jobs["crm"].last_error == "held"
    assert jobs["crm"].attempts == 0
    assert "🔒 Клиентская база: отложено до 31.12.2027" in card_text(desk)
    assert (await stored(desk, first)).status == RequestStatus.BLOCKED  # type: ignore[union-attr]
    assert fakes.ran("crm") == []  # the hold stopped it before the system was touched
    # The hold ends: the held erasure is carried out in the systems too, then the bot forgets.
    await desk.app.reminders.stop()
    clock.advance(timedelta(days=800))
    assert await desk.app.reminders.release_holds(desk.app.bot) == 1
    assert (await stored(desk, first)).status == RequestStatus.CARRYING_OUT  # type: ignore[union-attr]
    await desk.app.systems.drain(desk.app.bot)
    for number in (first, second):
        ticks = await jobs_of(desk, number)
        if ticks:
            await sam.tap_data(f"v1job:{number}:{ticks['archive'].id}:tick")
            await sam.reply_to(sam.expect("Бумажный архив"), "Shredded")
    await work(desk)
    async with desk.app.sessions() as session:
        assert await session.get(User, ann.id) is None
    assert {w.request_id for w in fakes.ran("crm")} <= {first, second}


async def test_two_workers_run_each_job_once(
    fake: FakeTelegram,
    tmp_path: Path,
    clock: FrozenClock,
    fakes: FakeSystems,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    first = systems_bot(fake, tmp_path, clock, fakes)
    second = systems_bot(fake, tmp_path, clock, fakes)
    await first.start()
    await second.start()
    try:
        for harness in (first, second):
            await harness.app.systems.stop()
        sam = first.staff("Sam")
        numbers = []
        for name in ("Ann", "Bob", "Cat", "Dan"):
            await file_access(first, name)
            numbers.append(len(numbers) + 1)
        await first.settle()
        for number in numbers:
            await sam.tap_data(f"v1req:{number}:done")
        await asyncio.gather(
            first.app.systems.drain(first.app.bot), second.app.systems.drain(second.app.bot)
        )
        assert set(fakes.per_job().values()) == {1}
        assert len(fakes.per_job()) == 2 * len(numbers)  # crm and helpdesk per request
        async with first.app.sessions() as session:
            answers = list(
                await session.scalars(
                    select(OutboxItem.request_id).where(
                        OutboxItem.kind == OutboxKind.SYSTEMS_ANSWER
                    )
                )
            )
        assert answers == []  # the manual archive still owes its part
    finally:
        await second.stop()
        await first.stop()


async def test_crash_points_heal_once(
    desk: Harness, fakes: FakeSystems, clock: FrozenClock
) -> None:
    ann, sam, number = await approved_erasure(desk)
    jobs = await jobs_of(desk, number)
    async with desk.app.sessions() as session:  # archive ticked directly: only crm/helpdesk
        repo = Repositories(session)
        archive = await repo.jobs.get(jobs["archive"].id)
        assert archive is not None
        await repo.jobs.tick(archive, clock.now(), sam.id, "done")
        # A worker claims crm's job, commits its claim, and dies.
        claimed = await repo.jobs.claim(clock.now(), skip_systems=["helpdesk"])
        assert claimed is not None and claimed.system_id == "crm"
        await repo.commit()
    await desk.app.systems.drain(desk.app.bot)
    assert fakes.ran("crm") == []  # within the lease nobody touches it
    assert (await jobs_of(desk, number))["crm"].status == JobStatus.RUNNING
    clock.advance(worker_module.LEASE + timedelta(seconds=1))
    await desk.restart()
    await desk.app.systems.stop()
    await work(desk)
    assert len(fakes.ran("crm")) == 1
    assert sum("erasure request is done" in e.text for e in ann.inbox) == 1


async def test_a_finished_job_whose_request_was_not_finished_is_finished_once(
    desk: Harness, fakes: FakeSystems, clock: FrozenClock
) -> None:
    ann = await onboarded(desk, "Ann")
    sam = desk.staff("Sam")
    await file_access(desk, "Bob")
    await desk.settle()
    await sam.tap_data("v1req:1:done")
    jobs = await jobs_of(desk, 1)
    async with desk.app.sessions() as session:
        repo = Repositories(session)
        for job in jobs.values():
            fresh = await repo.jobs.get(job.id)
            assert fresh is not None
            if fresh.status == JobStatus.MANUAL:
                await repo.jobs.tick(fresh, clock.now(), sam.id, "nothing there")
            else:  # run and finished, then the worker died before the finishing pass
                claimed = await repo.jobs.claim(clock.now())
                assert claimed is not None
                await repo.jobs.finish(claimed, clock.now(), counts={"accounts": 1})
        await repo.commit()
    assert (await stored(desk, 1)).status == RequestStatus.CARRYING_OUT  # type: ignore[union-attr]
    await desk.restart()
    await desk.app.systems.stop()
    await asyncio.gather(
        desk.app.systems.finisher.run(desk.app.bot), desk.app.systems.finisher.run(desk.app.bot)
    )
    await desk.app.systems.drain(desk.app.bot)
    assert (await stored(desk, 1)).status == RequestStatus.DONE  # type: ignore[union-attr]
    async with desk.app.sessions() as session:
        answers = list(
            await session.scalars(
                select(OutboxItem.id).where(OutboxItem.kind == OutboxKind.SYSTEMS_ANSWER)
            )
        )
    assert len(answers) == 1
    assert fakes.runs == []
    del ann


async def test_unconnected_systems_are_manual_items_and_staff_are_told_once(
    fake: FakeTelegram,
    tmp_path: Path,
    clock: FrozenClock,
    fakes: FakeSystems,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DESK_CRM_URL", ENV["DESK_CRM_URL"])  # the helpdesk has no variables
    harness = systems_bot(fake, tmp_path, clock, fakes)
    await harness.start()
    try:
        told = [e.text for e in fake.events if "не подключены" in e.text]
        assert len(told) == 1 and "helpdesk" in told[0] and "DESK_HELP_SECRET" in told[0]
        assert "crm" not in told[0].split("\n", 1)[1]
        await harness.restart()
        assert len([e for e in fake.events if "не подключены" in e.text]) == 1
        async with harness.app.sessions() as session:
            assert await Repositories(session).state.get(UNCONNECTED_KEY) == "helpdesk"
        await harness.app.systems.stop()
        _, _, number = await approved_erasure(harness)
        jobs = await jobs_of(harness, number)
        assert jobs["helpdesk"].status == JobStatus.MANUAL
        await harness.settle()
        assert "✋ Служба поддержки: выполнить вручную (не подключена)" in card_text(harness)
        assert fakes.built == ["crm", "crm"]  # one per start, never the helpdesk
    finally:
        await harness.stop()


async def test_a_connected_system_that_does_not_validate_stops_the_start(
    fake: FakeTelegram,
    tmp_path: Path,
    clock: FrozenClock,
    fakes: FakeSystems,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    fakes.problems["crm"] = ["table accounts: column tg_id is missing", "tg_id has no index"]
    harness = systems_bot(fake, tmp_path, clock, fakes)
    with pytest.raises(ConfigError) as raised:
        await harness.start()
    lines = str(raised.value).splitlines()
    assert lines[1:] == [
        "  system crm: table accounts: column tg_id is missing",
        "  system crm: tg_id has no index",
    ]
    assert "sqlite" not in str(raised.value) and "secret" not in str(raised.value)


async def test_a_system_that_accepts_and_calls_back_later(
    desk: Harness, fakes: FakeSystems, clock: FrozenClock
) -> None:
    fakes.outcomes["helpdesk"] = [Accepted()]
    ann, sam, number = await approved_erasure(desk)
    await work(desk)
    assert "⏳ Служба поддержки: принято, ждём ответа системы" in card_text(desk)
    helpdesk = (await jobs_of(desk, number))["helpdesk"]
    assert helpdesk.status == JobStatus.WAITING
    await sam.tap("☑️ Сделано вручную: Бумажный архив")
    await sam.reply_to(sam.expect("Бумажный архив"), "Shredded")
    await work(desk)
    assert (await stored(desk, number)).status == RequestStatus.CARRYING_OUT  # type: ignore[union-attr]
    system = desk.app.pack.system("helpdesk")
    assert system is not None
    callbacks = WebhookCallbacks(desk.app.sessions, clock, {"helpdesk": Endpoint(system, "s3")})
    body = json.dumps({"job": helpdesk.id, "status": "done", "counts": {"contact": 3}}).encode()
    forged = await callbacks.receive("helpdesk", body, sign("wrong", body))
    assert forged.status == 401
    for _ in range(2):  # the system calls back twice: recorded once
        answer = await callbacks.receive("helpdesk", body, sign("s3", body))
        assert answer.status == 200
    await work(desk)
    assert sum("erasure request is done" in e.text for e in ann.inbox) == 1
    assert len(fakes.ran("helpdesk")) == 1
