"""The answer to an access or portability request carried out in the operator's systems
(OutboxKind.SYSTEMS_ANSWER): the records each system holds, by category and with their source,
in the readable answer (as a file when it is long) and in the export (schema version 2); the
collected data sealed under the person's key, purged a set time after delivery, unreadable
after their erasure. The jobs are written directly through the repositories: the worker that
runs them is tested apart."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.core.packs import PACKS_DIR
from bot.delivery.outbox import answer
from bot.domain.systems import Done, done_json
from storage.crypto import DataKeyGone, KeyRing
from storage.enums import JobStatus, OutboxKind, OutboxStatus, RequestStatus
from storage.models import OutboxItem
from storage.models_systems import SystemJob
from storage.repositories import Repositories
from tests.fake_telegram import Event, FakeTelegram
from tests.kit import ADMIN_CHAT_ID, Harness, Person
from tests.packs import without_systems
from tests.test_consents import onboarded
from tests.test_encryption import MASTER, sealed_values
from tests.test_execution import VALIDATOR, last_export, scan_database

PURGE_DAYS = 10
SYSTEMS = """
[categories]
contact = { ru = "Контактные данные", en = "Contact details" }
identity = { ru = "Идентификационные данные", en = "Identity" }
billing = { ru = "Платежи", en = "Billing" }
tickets = { ru = "Обращения в поддержку", en = "Support tickets" }

[[systems]]
id = "accounts"
name = { ru = "Личный кабинет", en = "Customer account" }
kind = "sql"
categories = ["contact", "identity", "billing"]
url_env = "DATA_TEST_ACCOUNTS_URL"

[[systems.tables]]
name = "accounts"
key = "id"
identity = { kind = "telegram_id", column = "tg_id" }
fields = [
  { column = "email", category = "contact" },
  { column = "full_name", category = "identity" },
]

[[systems.tables]]
name = "invoices"
parent = { table = "accounts", column = "account_id" }
erase = "update"
keep.ru = "счета хранятся 10 лет по налоговому законодательству"
keep.en = "invoices are kept for 10 years under tax law"
fields = [
  { column = "payer", category = "identity", erase = "hash" },
  { column = "amount", category = "billing", erase = "keep" },
]

[[systems]]
id = "support"
name = { ru = "Служба поддержки", en = "Support desk" }
kind = "webhook"
categories = ["tickets"]
url_env = "DATA_TEST_SUPPORT_URL"
secret_env = "DATA_TEST_SUPPORT_SECRET"

[[systems]]
id = "archive"
name = { ru = "Бумажный архив", en = "Paper archive" }
kind = "manual"
categories = ["identity"]
instructions = { ru = "Проверить папки договоров.", en = "Check the contract folders." }
"""
EMAIL = "ann.zzq@example.com"
NAME = "Annabel Quuxley"


def systems_pack(tmp_path: Path) -> Path:
    """The hosting pack with its own three systems (sql, webhook, manual), purged after 10 days."""
    source = (PACKS_DIR / "gdpr_hosting.toml").read_text("utf-8")
    old = "erasure_records_days = 1095\n"
    assert old in source
    source = source.replace(old, old + f"access_data_days = {PURGE_DAYS}\n")
    source = without_systems(source) + SYSTEMS  # the shipped demo systems give way
    path = tmp_path / "systems.toml"
    path.write_text(source, "utf-8")
    return path


@pytest.fixture
async def sbot(fake: FakeTelegram, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Harness]:
    harness = Harness(fake, tmp_path, pack=str(systems_pack(tmp_path)), clock=clock, systems=True)
    await harness.start()
    await harness.app.reminders.stop()  # the tests run the daily pass themselves
    yield harness
    await harness.stop()


@dataclass
class Job:
    system: str
    done: Done = field(default_factory=Done)
    status: JobStatus = JobStatus.DONE
    by: int | None = None  # staff who ticked it or completed the request
    note: str | None = None


def accounts(rows: int = 1) -> Job:
    found: dict[str, list[dict[str, Any]]] = {
        "contact": [{"source": "accounts", "fields": {"email": EMAIL}}],
        "identity": [
            {"source": "accounts", "fields": {"full_name": NAME}},
            {"source": "invoices", "fields": {"payer": NAME}},
        ],
        "billing": [
            {"source": "invoices", "fields": {"amount": f"{120 + i}.00", "paid": i % 2 == 0}}
            for i in range(rows)
        ],
    }
    counts = {"accounts": 1, "invoices": rows}
    return Job("accounts", Done(counts=counts, found=found, kept=("invoices",)))


def support() -> Job:
    ticket = {"source": "support", "fields": {"subject": "Cannot log in", "opened": "2026-10-01"}}
    return Job("support", Done(counts={"tickets": 1}, found={"tickets": [ticket]}))


async def file_request(person: Person, kind: str = "access") -> int:
    ru = person.lang == "ru"
    button = {
        ("access", False): "🔎 What do you hold about me?",
        ("access", True): "🔎 Какие данные обо мне есть?",
        ("portability", False): "📦 Export my data",
        ("portability", True): "📦 Выгрузить мои данные",
    }[kind, ru]
    await person.send("/rights")
    await person.tap(button)
    await person.tap("✅ Отправить заявление" if ru else "✅ Send the request")
    received = person.expect("№" if ru else "#")
    return int(received.text.split("№" if ru else "#")[1].split()[0])


async def carried_out(bot: Harness, person: Person, number: int, kind: str, jobs: list[Job]) -> int:
    """The request's jobs are done (their results stored as the worker stores them), the
    request is done and the answer queued, in one transaction (as the desk does it)."""
    now = bot.app.clock.now()
    async with bot.app.sessions() as session:
        repo = Repositories(session)
        request = await repo.requests.get(number)
        assert request is not None
        request.status, request.closed_at = RequestStatus.DONE, now
        for spec in jobs:
            job = await repo.jobs.add(
                user_id=person.id,
                request_id=number,
                system_id=spec.system,
                action=kind,
                now=now,
                status=spec.status,
            )
            if spec.status == JobStatus.DONE or spec.by is not None:
                job.done_at = now
            job.counts = json.dumps(spec.done.counts)
            job.data = done_json(spec.done)
            job.done_by, job.note = spec.by, spec.note
        item = await repo.outbox.add(
            kind=OutboxKind.SYSTEMS_ANSWER, user_id=person.id, request_id=number, now=now
        )
        await repo.commit()
        return item.id


async def jobs_of(bot: Harness, number: int) -> list[SystemJob]:
    async with bot.app.sessions() as session:
        return await Repositories(session).jobs.of_request(number)


def since(bot: Harness, person: Person, start: int) -> list[Event]:
    return [e for e in bot.fake.events[start:] if e.chat_id == person.id]


def staff_texts(bot: Harness, start: int) -> list[str]:
    return [e.text for e in bot.fake.events[start:] if e.chat_id == ADMIN_CHAT_ID]


async def test_the_access_answer_holds_each_systems_records_then_they_are_purged(
    sbot: Harness, clock: FrozenClock
) -> None:
    bot = sbot
    ann = await onboarded(bot, "Ann")
    number = await file_request(ann)
    await bot.settle()
    start = len(bot.fake.events)
    archive = Job("archive", by=42, note="Checked the contract folders: one signed contract")
    await carried_out(bot, ann, number, "access", [accounts(), support(), archive])
    await bot.settle()

    events = since(bot, ann, start)
    texts = [e.text for e in events if e.kind == "message"]
    assert texts[0] == f"✅ Request #{number} (access) is done."
    assert sum("is done" in text for text in texts) == 1  # one "done", the answer's own
    answer_text = "\n".join(texts)
    for part in (
        "What we process about you",  # today's report
        "What this bot holds about you",
        "Your data in the operator's systems",
        "Customer account (collected",
        "Contact details",
        f"• accounts: email: {EMAIL}",
        f"• invoices: payer: {NAME}",
        "Billing",
        "• invoices: amount: 120.00; paid: yes",
        "The rows of invoices are kept because the law requires it: invoices are kept for 10 "
        "years under tax law",
        "Support desk (collected",
        "Support tickets",
        "• support: subject: Cannot log in; opened: 2026-10-01",
        "Paper archive (checked by staff by hand,",
        "Staff's note: Checked the contract folders: one signed contract",
        "with the data from each system",
    ):
        assert part in answer_text, part
    assert "Staff will add what is held outside the bot" not in answer_text
    assert all(len(text) <= 4096 for text in texts)
    assert events[-1].kind == "document"
    assert "Data from the operator's systems: 2 systems" in events[-1].text
    export = last_export(bot, ann)
    VALIDATOR.validate(export)
    assert export["version"] == 2
    systems = {s["system"]: s for s in export["systems"]}  # type: ignore[attr-defined]
    assert list(systems) == ["accounts", "support", "archive"]
    assert systems["accounts"]["name"] == "Customer account"
    assert systems["accounts"]["source"] == "sql"
    assert systems["accounts"]["categories"]["contact"] == [
        {"source": "accounts", "fields": {"email": EMAIL}}
    ]
    assert systems["accounts"]["kept"] == [
        {"source": "invoices", "reason": "invoices are kept for 10 years under tax law"}
    ]
    assert systems["support"]["source"] == "webhook" and not systems["support"]["by_hand"]
    assert systems["archive"]["by_hand"] and systems["archive"]["categories"] == {}
    assert systems["archive"]["note"] == "Checked the contract folders: one signed contract"
    assert staff_texts(bot, start) == []  # nothing to staff

    now = clock.now()
    for job in await jobs_of(bot, number):
        assert job.delivered_at == now
        assert job.purge_at == now + timedelta(days=PURGE_DAYS)
    async with bot.app.sessions() as session:
        [item] = await session.scalars(
            select(OutboxItem).where(OutboxItem.kind == OutboxKind.SYSTEMS_ANSWER)
        )
        assert item.status == OutboxStatus.SENT

    # /export holds the collected data while the bot keeps it.
    clock.advance(timedelta(days=PURGE_DAYS - 1))
    await ann.send("/export")
    export = last_export(bot, ann)
    VALIDATOR.validate(export)
    held = [s["system"] for s in export["systems"]]  # type: ignore[attr-defined]
    assert held == ["accounts", "support"]  # the manual one collected nothing
    assert "Data from the operator's systems: 2 systems" in ann.last.events[-1].text
    assert await bot.app.reminders.retention.run(bot.app.bot) is not None
    kept = [job.data is not None for job in await jobs_of(bot, number)]
    assert kept == [True, True, False]  # not yet (the manual one stored nothing)

    clock.advance(timedelta(days=1))
    assert await bot.app.reminders.retention.run(bot.app.bot) is not None
    jobs = await jobs_of(bot, number)
    assert [job.data for job in jobs] == [None, None, None]
    assert json.loads(jobs[0].counts or "") == {"accounts": 1, "invoices": 1}  # counts remain
    await ann.send("/export")
    export = last_export(bot, ann)
    VALIDATOR.validate(export)
    assert export["systems"] == []
    assert "operator's systems" not in ann.last.events[-1].text


async def test_the_answer_in_russian_with_a_system_a_dpo_explained(sbot: Harness) -> None:
    bot = sbot
    boris = await onboarded(bot, "Борис", lang="ru")
    number = await file_request(boris)
    await bot.settle()
    start = len(bot.fake.events)
    explained = Job(
        "archive",
        status=JobStatus.CANCELLED,
        by=42,
        note="архив на реконструкции, ответ будет выслан письмом",
    )
    nothing = Job("support", Done(counts={"tickets": 0}))
    await carried_out(bot, boris, number, "access", [accounts(), nothing, explained])
    await bot.settle()

    texts = [e.text for e in since(bot, boris, start) if e.kind == "message"]
    assert texts[0] == f"✅ Заявление №{number} (доступ) выполнено."
    answer_text = "\n".join(texts)
    for part in (
        "Ваши данные в системах оператора",
        "Личный кабинет (данные собраны",
        "Контактные данные",
        f"• accounts: email: {EMAIL}",
        "• invoices: amount: 120.00; paid: да",
        "Строки таблицы invoices хранятся, так как этого требует закон: счета хранятся 10 лет "
        "по налоговому законодательству",
        "Служба поддержки (данные собраны",
        "Данных о вас здесь не найдено.",
        "Бумажный архив",
        "Здесь заявление не выполнено; ответственный за защиту данных объяснил: архив на "
        "реконструкции, ответ будет выслан письмом",
    ):
        assert part in answer_text, part
    export = last_export(bot, boris)
    VALIDATOR.validate(export)
    archive = export["systems"][2]  # type: ignore[index]
    assert (archive["status"], archive["by_hand"]) == ("cancelled", False)
    assert archive["name"] == "Бумажный архив"
    assert "Данные из систем оператора: 1 система" in since(bot, boris, start)[-1].text


async def test_portability_gets_the_file_only(sbot: Harness) -> None:
    bot = sbot
    ann = await onboarded(bot, "Ann")
    number = await file_request(ann, "portability")
    await bot.settle()
    start = len(bot.fake.events)
    await carried_out(bot, ann, number, "portability", [accounts(), support()])
    await bot.settle()
    events = since(bot, ann, start)
    assert [e.kind for e in events] == ["message", "document"]
    assert events[0].text == f"✅ Request #{number} (portability) is done."
    export = last_export(bot, ann)
    VALIDATOR.validate(export)
    assert [s["system"] for s in export["systems"]] == ["accounts", "support"]  # type: ignore[attr-defined]


async def test_a_big_answer_goes_as_a_file(sbot: Harness) -> None:
    bot = sbot
    ann = await onboarded(bot, "Ann")
    number = await file_request(ann)
    await bot.settle()
    start = len(bot.fake.events)
    await carried_out(bot, ann, number, "access", [accounts(rows=400), support()])
    await bot.settle()

    events = since(bot, ann, start)
    documents = [e for e in events if e.kind == "document"]
    assert [d.raw["file_name"] for d in documents] == [
        f"systems-data-{number}.html",
        f"my-data-{bot.app.clock.now():%Y%m%d}.json",
    ]
    assert "The data from the operator's systems is long" in documents[0].text
    page = documents[0].raw["content"].decode("utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Your data in the operator's systems" in page
    assert f"• accounts: email: {EMAIL}" in page and "amount: 519.00" in page
    texts = "\n".join(e.text for e in events if e.kind == "message")
    assert "What we process about you" in texts and EMAIL not in texts
    VALIDATOR.validate(last_export(bot, ann))
    assert len(last_export(bot, ann)["systems"][0]["categories"]["billing"]) == 400  # type: ignore[index]


async def test_an_answer_cut_by_a_flood_limit_goes_on_where_it_stopped(
    sbot: Harness, clock: FrozenClock
) -> None:
    bot = sbot
    ann = await onboarded(bot, "Ann")
    number = await file_request(ann)
    await bot.settle()
    start = len(bot.fake.events)
    bot.fake.fail(
        "sendDocument",
        chat_id=ann.id,
        status=429,
        description="Too Many Requests: retry after 7",
        retry_after=7,
    )
    await carried_out(bot, ann, number, "access", [accounts(), support()])
    await bot.settle()
    sent = since(bot, ann, start)
    assert sent and all(e.kind == "message" for e in sent)  # the file waits
    assert all(job.delivered_at is None for job in await jobs_of(bot, number))
    clock.advance(timedelta(seconds=8))
    await bot.settle()
    events = since(bot, ann, start)
    assert [e.kind for e in events] == [*(e.kind for e in sent), "document"]
    assert sum("is done" in e.text for e in events) == 1  # nothing sent twice
    assert all(job.delivered_at == clock.now() for job in await jobs_of(bot, number))


async def test_a_person_who_blocked_the_bot(sbot: Harness, clock: FrozenClock) -> None:
    bot = sbot
    ann = await onboarded(bot, "Ann")
    number = await file_request(ann)
    await bot.settle()
    bot.fake.blocked.add(ann.id)
    start = len(bot.fake.events)
    await carried_out(bot, ann, number, "access", [accounts()])
    await bot.settle()
    async with bot.app.sessions() as session:
        [item] = await session.scalars(
            select(OutboxItem).where(OutboxItem.kind == OutboxKind.SYSTEMS_ANSWER)
        )
    assert item.status == OutboxStatus.BLOCKED
    [job] = await jobs_of(bot, number)
    # Not delivered; the data goes all the same, as if it had been delivered now.
    assert job.delivered_at is None and job.purge_at == clock.now() + timedelta(days=PURGE_DAYS)
    assert EMAIL not in "\n".join(staff_texts(bot, start))
    [card] = bot.cards()
    assert "Пользователь недоступен" in bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]["text"]


async def test_the_collected_data_is_sealed_and_goes_with_the_persons_key(sbot: Harness) -> None:
    bot = sbot
    ann = await onboarded(bot, "Ann")
    number = await file_request(ann)
    await bot.settle()
    await carried_out(bot, ann, number, "access", [accounts(), support()])
    await bot.settle()
    needles = [EMAIL.encode(), NAME.encode(), b"Cannot log in"]
    raw = await sealed_values(bot, "system_jobs", "data")
    assert len(raw) == 2
    assert not any(needle.decode() in value for value in raw for needle in needles)
    assert await scan_database(bot, needles) == []
    [job, _] = await jobs_of(bot, number)
    assert job.data is not None and EMAIL in job.data  # opened through the ORM

    await bot.app.erasure.execute(bot.app.bot, ann.id, cause="test", notice="requests.hold_ended")
    ring = KeyRing(MASTER)
    async with bot.app.engine.connect() as connection:
        for token in raw:
            with pytest.raises(DataKeyGone):
                await connection.run_sync(lambda c, t=token: ring.open(c, t))
    assert await sealed_values(bot, "system_jobs", "data") == []


async def test_an_answer_whose_person_was_erased_meanwhile_ends_quietly(
    sbot: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bot = sbot
    ann = await onboarded(bot, "Ann")
    number = await file_request(ann)
    await bot.settle()
    real = answer.build_export

    async def erased_while_rendering(*args: Any, **kwargs: Any) -> dict[str, Any]:
        export = await real(*args, **kwargs)
        await bot.app.erasure.execute(
            bot.app.bot, ann.id, cause="test", notice="requests.hold_ended"
        )
        return export

    monkeypatch.setattr(answer, "build_export", erased_while_rendering)
    start = len(bot.fake.events)
    await carried_out(bot, ann, number, "access", [accounts(), support()])
    await bot.settle()
    assert "(systems_answer) ended: its person was erased meanwhile" in caplog.text
    staff = "\n".join(staff_texts(bot, start))
    assert "failed" not in staff and "не доставлено" not in staff.lower()
    assert EMAIL not in staff and NAME not in staff
    async with bot.app.sessions() as session:
        left = list(await session.scalars(select(OutboxItem).where(OutboxItem.user_id == ann.id)))
        assert left == []
        assert list(await session.scalars(select(SystemJob))) == []
    # At most the message that was on its way reached the person: never their data.
    texts = "\n".join(e.text for e in since(bot, ann, start))
    assert EMAIL not in texts and "document" not in [e.kind for e in since(bot, ann, start)]

    # Erased before the answer went: the item went with the person.
    ben = await onboarded(bot, "Ben")
    number = await file_request(ben)
    await bot.settle()
    monkeypatch.undo()
    start = len(bot.fake.events)
    await carried_out(bot, ben, number, "access", [accounts()])
    await bot.app.erasure.execute(bot.app.bot, ben.id, cause="test", notice="requests.hold_ended")
    await bot.settle()
    assert EMAIL not in "\n".join(e.text for e in bot.fake.events[start:])
    assert not any("failed" in text for text in staff_texts(bot, start))


async def test_an_answer_without_jobs_says_the_file_follows(sbot: Harness) -> None:
    """A request whose jobs are all gone (none stored anything): the report and the file."""
    bot = sbot
    ann = await onboarded(bot, "Ann")
    number = await file_request(ann)
    await bot.settle()
    start = len(bot.fake.events)
    await carried_out(bot, ann, number, "access", [])
    await bot.settle()
    events = since(bot, ann, start)
    assert events[-2].text.startswith("The file below holds all of it")
    assert events[-1].kind == "document"
    VALIDATOR.validate(last_export(bot, ann))
