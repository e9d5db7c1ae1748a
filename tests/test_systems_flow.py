"""More of a request carried out in the operator's systems (tests/systems_kit.py): a
correction and a restriction, the worker's own loop woken by the approval's commit, storage-
limitation erasures through the jobs, the register's column, a card with many systems, and a
pack without systems deciding as before."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.clock import FrozenClock
from bot.core.i18n import translator
from bot.core.packs import load_pack
from bot.core.systems import SystemKind
from bot.delivery.systems.worker import SystemsWorker
from bot.domain.systems import Failed
from bot.telegram.texts.checklist import checklist_lines
from bot.telegram.texts.requests import card_text
from storage.enums import JobStatus, RequestStatus
from storage.models import Request, User
from storage.models_systems import SystemJob
from storage.repositories import Repositories
from tests.fake_telegram import FakeTelegram
from tests.kit import Harness
from tests.systems_kit import ENV, SYSTEMS, FakeSystems, write_systems_pack
from tests.test_consents import onboarded
from tests.test_shared_work import wait_until
from tests.test_systems_desk import approved_erasure, jobs_of, stored, work
from tests.test_systems_desk import card_text as card_of


@pytest.fixture
def fakes() -> FakeSystems:
    return FakeSystems()


@pytest.fixture
async def live(
    fake: FakeTelegram,
    tmp_path: Path,
    clock: FrozenClock,
    fakes: FakeSystems,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Harness]:
    """The bot with its systems' worker running on its own (loop and wake)."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    harness = Harness(
        fake, tmp_path, pack=str(write_systems_pack(tmp_path)), clock=clock, systems=True
    )
    harness.factory = fakes.factory()
    await harness.start()
    yield harness
    await harness.stop()


@pytest.fixture
async def desk_fakes(live: Harness, fakes: FakeSystems) -> tuple[Harness, FakeSystems]:
    """The bot whose worker the test runs by hand."""
    await live.app.systems.stop()
    return live, fakes


async def test_the_approvals_commit_wakes_the_worker(live: Harness, fakes: FakeSystems) -> None:
    ann, sam, number = await approved_erasure(live)
    # Nobody runs a pass by hand: the commit woke the worker.
    await wait_until(lambda: len(fakes.runs) == 2, seconds=20)
    jobs = await jobs_of(live, number)
    assert {jobs["crm"].status, jobs["helpdesk"].status} <= {JobStatus.DONE, JobStatus.RUNNING}
    await live.settle()  # the card's checklist (its edit queued by the approval) is out
    await sam.tap("☑️ Сделано вручную: Бумажный архив")
    await sam.reply_to(sam.expect("Бумажный архив"), "Shredded")

    async def erased() -> bool:
        async with live.app.sessions() as session:
            return await session.get(User, ann.id) is None

    async with asyncio.timeout(20):
        while not await erased():  # noqa: ASYNC110 - the effect comes from another task
            await asyncio.sleep(0.05)
    await live.settle()
    assert "Your erasure request is done" in ann.inbox[-1].text
    assert sorted(sid for sid, _ in fakes.runs) == ["crm", "helpdesk"]


async def test_a_correction_is_applied_now_and_told_at_the_end(
    live: Harness, fakes: FakeSystems
) -> None:
    await live.app.systems.stop()
    ann = await onboarded(live, "Ann")
    sam = live.staff("Sam")
    await ann.send("/rights")
    await ann.tap("✏️ Correct my data")
    await ann.send_contact("+375 29 123 45 67", user_id=ann.id)
    await ann.tap("First name")
    await ann.send("Anna")
    await ann.tap("✅ Send the request")
    await live.settle()
    await sam.tap("✅ Выполнено")
    async with live.app.sessions() as session:
        user = await session.get(User, ann.id)
        assert user is not None and user.first_name == "Anna"  # the bot's own field, now
    jobs = await jobs_of(live, 1)
    assert set(jobs) == {"crm", "helpdesk", "archive"}  # crm corrects first_name
    await work(live)
    [crm] = fakes.ran("crm")
    assert crm.correction is not None and (crm.correction.field, crm.correction.value) == (
        "first_name",
        "Anna",
    )
    assert not any("is done" in e.text for e in ann.inbox)
    await sam.tap("☑️ Сделано вручную: Бумажный архив")
    await sam.reply_to(sam.expect("Бумажный архив"), "Corrected in the folder")
    await work(live)
    assert "✅ Request #1 (correction) is done." in ann.inbox[-1].text
    card = card_of(live)
    assert f"✅ Бумажный архив: выполнено вручную, сотрудник {sam.id}, 23.11.2026" in card
    assert card.split("\n")[1] == "Статус: ✅ выполнено"
    assert (await stored(live, 1)).status == RequestStatus.DONE  # type: ignore[union-attr]


async def test_a_restriction_asks_until_when_then_is_carried_out(
    live: Harness, fakes: FakeSystems
) -> None:
    await live.app.systems.stop()
    ann = await onboarded(live, "Ann")
    sam = live.staff("Sam")
    await ann.send("/rights")
    await ann.tap("⏸ Restrict processing")
    await ann.send("Checking accuracy")
    await ann.tap("✅ Send the request")
    await live.settle()
    await sam.tap("✅ Выполнено")
    prompt = sam.expect("до какого числа ограничить")
    await sam.reply_to(prompt, "31.12.2027")
    request = await stored(live, 1)
    assert request is not None and request.status == RequestStatus.CARRYING_OUT
    await work(live)
    [crm] = fakes.ran("crm")
    assert crm.restrict_until is not None and crm.restrict_until.year == 2027
    await sam.tap("☑️ Сделано вручную: Бумажный архив")
    await sam.reply_to(sam.expect("Бумажный архив"), "Flagged")
    await work(live)
    assert "is done: until 31 Dec 2027" in ann.inbox[-1].text


async def test_storage_limitation_erases_through_the_systems_first(
    live: Harness, fakes: FakeSystems, clock: FrozenClock
) -> None:
    await live.app.systems.stop()
    await live.app.reminders.stop()
    ann = await onboarded(live, "Ann")
    clock.advance(timedelta(days=live.pack.retention.inactive_days + 1))
    fakes.gates["crm"] = asyncio.Event()  # the database answers only when let
    await live.app.reminders.retention.run(live.app.bot)
    async with live.app.sessions() as session:
        jobs = await Repositories(session).jobs.of_user(ann.id)
    # The connected systems only: a manual one has no card to be ticked on.
    assert sorted((j.system_id, j.request_id) for j in jobs) == [
        ("crm", None),
        ("helpdesk", None),
    ]
    drained = asyncio.create_task(live.app.systems.drain(live.app.bot))
    await wait_until(lambda: len(fakes.ran("helpdesk")) == 1)
    async with live.app.sessions() as session:
        assert await session.get(User, ann.id) is not None  # crm still owes its part
    # The next day's run starts nothing again for her.
    clock.advance(timedelta(days=1))
    await live.app.reminders.retention.run(live.app.bot)
    fakes.gates["crm"].set()
    await drained
    await work(live)
    async with live.app.sessions() as session:
        assert await session.get(User, ann.id) is None
    assert len(fakes.runs) == 2


async def test_the_register_names_each_systems_outcome(live: Harness) -> None:
    await live.app.systems.stop()
    ann, sam, number = await approved_erasure(live)
    await work(live)
    await sam.send("/register")
    document = sam.expect("Реестр")
    rows = list(csv.reader(io.StringIO(document.raw["content"].decode("utf-8-sig"))))
    assert rows[0][-1] == "systems"
    cell = rows[1][-1]
    assert cell.startswith("crm:done:2026-11-23T09:00:00+00:00; helpdesk:done:")
    assert cell.endswith("; archive:manual")
    del ann, number


def test_a_card_with_many_systems_fits_one_message(tmp_path: Path) -> None:
    extra = "".join(
        SYSTEMS.split("[[systems]]")[3]
        .replace('id = "archive"', f'id = "archive{i}"')
        .join(("\n[[systems]]", ""))
        for i in range(150)
    )
    path = write_systems_pack(tmp_path)
    path.write_text(path.read_text("utf-8") + extra, "utf-8")
    pack = load_pack(str(path))
    t = translator("ru")
    jobs = [
        SystemJob(id=i, system_id=s.id, status=JobStatus.FAILED, last_error="x" * 200)
        for i, s in enumerate(pack.systems)
    ]
    request = Request(
        id=1,
        type="erasure",
        status=RequestStatus.CARRYING_OUT,
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
        due_at=datetime(2026, 1, 9, tzinfo=UTC),
        details="{}",
        verification="telegram_id",
        undelivered=0,
        user_unreachable=False,
    )
    lines = checklist_lines(jobs, pack, t)
    text = card_text(request, None, pack, t, None, None, lines)
    assert len(text) < 4096
    assert "…и ещё" in text


async def test_a_pack_without_systems_starts_no_worker(bot: Harness) -> None:
    assert isinstance(bot.app.systems, SystemsWorker)
    assert bot.app.systems._task is None  # nothing to carry out: no loop
    assert bot.app.registry.connectors == {} and bot.app.registry.unconnected() == []


def test_a_kind_whose_module_is_missing_is_not_connected(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.delivery.systems.registry import Registry, Wiring

    def missing(system: object, wiring: Wiring) -> object:
        raise ModuleNotFoundError("bot.delivery.systems.sql")

    pack = load_pack(str(write_systems_pack(tmp_path)))
    fakes = FakeSystems()
    factory = {**fakes.factory(), SystemKind.SQL: missing}
    with caplog.at_level("INFO"):
        registry = Registry.build(pack, ENV, pseudonym_secret="s" * 32, factory=factory)
    assert set(registry.connectors) == {"helpdesk"}
    assert [s.id for s in registry.unconnected()] == ["crm"]
    assert "System crm is not connected: this build has no sql connector" in caplog.text
    assert ENV["DESK_HELP_URL"] not in caplog.text and ENV["DESK_HELP_SECRET"] not in caplog.text
    # Without its variables a system is not connected either; a manual one never is "connected".
    bare = Registry.build(pack, {}, pseudonym_secret="s" * 32, factory=fakes.factory())
    assert bare.connectors == {} and [s.id for s in bare.unconnected()] == ["crm", "helpdesk"]


async def test_a_worker_stopped_mid_job_puts_the_job_back_at_once(
    live: Harness, fakes: FakeSystems
) -> None:
    fakes.gates["crm"] = asyncio.Event()  # the database hangs
    _, _, number = await approved_erasure(live)

    async def crm_status() -> str:
        return str((await jobs_of(live, number))["crm"].status)

    async with asyncio.timeout(20):
        while await crm_status() != JobStatus.RUNNING:  # noqa: ASYNC110 - another task's effect
            await asyncio.sleep(0.02)
    await live.app.systems.stop()
    crm = (await jobs_of(live, number))["crm"]
    assert crm.status == JobStatus.PENDING and crm.attempts == 0
    fakes.gates["crm"].set()
    await work(live)
    assert len(fakes.ran("crm")) == 1


@pytest.mark.parametrize("locale", ["ru", "en"])
def test_every_checklist_line_renders_in_both_languages(tmp_path: Path, locale: str) -> None:
    from storage.repositories.systems import HELD, NOT_CONNECTED

    pack = load_pack(str(write_systems_pack(tmp_path)))
    t = translator(locale)
    at = datetime(2026, 11, 23, 9, tzinfo=UTC)
    cases = [
        SystemJob(status=JobStatus.PENDING, last_error=None),
        SystemJob(status=JobStatus.PENDING, last_error="timed out"),
        SystemJob(status=JobStatus.PENDING, last_error=HELD, next_attempt_at=at),
        SystemJob(status=JobStatus.RUNNING, last_error=None),
        SystemJob(status=JobStatus.WAITING, last_error=None),
        SystemJob(status=JobStatus.DONE, counts='{"accounts": 2, "orders": 3}', done_by=None),
        SystemJob(status=JobStatus.DONE, done_by=42, done_at=at),
        SystemJob(status=JobStatus.FAILED, last_error="<b>down</b>"),
        SystemJob(status=JobStatus.MANUAL, last_error=None),
        SystemJob(status=JobStatus.MANUAL, last_error=NOT_CONNECTED),
        SystemJob(status=JobStatus.CANCELLED, done_by=42, done_at=at),
    ]
    for job in cases:
        job.system_id = "crm"
    lines = checklist_lines(cases, pack, t)
    assert len(lines) == len(cases) + 1
    assert all("{" not in line and "carrying." not in line for line in lines)
    assert any("5" in line for line in lines)  # the rows of both tables
    assert any("&lt;b&gt;down" in line for line in lines)  # a reason is escaped


async def test_a_job_running_when_a_dpo_completes_is_not_retried_if_it_fails(
    desk_fakes: tuple[Harness, FakeSystems],
) -> None:
    bot, fakes = desk_fakes
    fakes.gates["crm"] = asyncio.Event()
    fakes.outcomes["crm"] = [Failed("down")]
    ann, sam, number = await approved_erasure(bot)
    worker = asyncio.create_task(bot.app.systems.drain(bot.app.bot))
    await wait_until(lambda: len(fakes.ran("helpdesk")) == 1)
    assert (await jobs_of(bot, number))["crm"].status == JobStatus.RUNNING
    await sam.tap("📝 Завершить с пояснением (DPO)")
    await sam.reply_to(sam.expect("что не сделано в системах"), "The CRM is being retired")
    assert (await jobs_of(bot, number))["crm"].status == JobStatus.RUNNING  # left to its worker
    fakes.gates["crm"].set()
    await worker
    await work(bot)
    assert "Your erasure request is done" in ann.inbox[-1].text
    assert len(fakes.ran("crm")) == 1  # not retried
