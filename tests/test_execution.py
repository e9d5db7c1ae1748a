"""Decisions take effect: instant access answers and exports, erasure that leaves no trace,
legal holds, restriction, correction, and objection to marketing."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from bot.core.clock import FrozenClock
from bot.domain import erasure as erasure_module
from bot.domain.erasure import FULL, SCRUB, Pending, pseudonym
from bot.domain.export import SCHEMA_PATH
from storage.models import AuditEntry, ConsentEvent, ErasureRecord, User
from tests.engines import ON_POSTGRESQL, stored_files
from tests.kit import ADMIN_CHAT_ID, PSEUDONYM_SECRET, Harness, Person
from tests.test_campaigns import campaign_messages, start_campaign, subscriber
from tests.test_consents import onboarded
from tests.test_requests import erasure_on_the_desk, file_erasure

VALIDATOR = Draft202012Validator(json.loads(SCHEMA_PATH.read_text("utf-8")))


def last_export(bot: Harness, person: Person) -> dict[str, object]:
    document = next(
        e for e in reversed(bot.fake.events) if e.kind == "document" and e.chat_id == person.id
    )
    return dict(json.loads(document.raw["content"]))


async def user_row(bot: Harness, user_id: int) -> User | None:
    async with bot.app.sessions() as session:
        return await session.get(User, user_id)


async def test_access_is_answered_at_once_with_the_export(bot: Harness, clock: FrozenClock) -> None:
    ann = await subscriber(bot, "Ann")
    staff = bot.staff("Sam")
    await staff.send(f'/disclose {ann.id} "Tax office" "name, phone" "legal obligation"')
    staff.expect(f"Предоставление записано для пользователя {ann.id}: Tax office")
    clock.advance(timedelta(days=400))
    await staff.send(f'/disclose {ann.id} "Court" "correspondence" "court order"')
    await staff.send("/disclose 123 missing-quotes")
    staff.expect("/disclose id-пользователя")

    await ann.send("/rights")
    await ann.tap("🔎 What do you hold about me?")
    await ann.tap("✅ Send the request")
    ann.expect("received: access")
    report = "\n".join(ann.last.texts)
    for part in (
        "What we process about you",
        "Operator: EVDELIKS LLC, Dolgobrodskaya St. 16",
        "We confirm that we process your personal data",
        "Marketing messages (consent, given on 23 Nov 2026): Telegram ID, name, language. "
        "Source: from you",
        "Training models on personal data: consent never given; not processed",
        "Legitimate interest pursued: security of the Service",
        "Recipients: state bodies, including law-enforcement",
        "Automated decisions: No decisions with legal effects",
        "Your rights: access, information on disclosures, correction",  # 99-Z art. 12
        "Where to complain: to the National Personal Data Protection Center",
        "Authorised persons (processors): payment systems (the policy gives no names or countries)",
        "Transfer abroad: EU/EEA: countries with adequate protection",
        "What this bot holds about you",
        f"Telegram ID {ann.id}",
        "Age answer: 16 or older",
        "Consents on: Marketing messages",
        "Disclosures to third parties during the last year",
        "to Court — correspondence (basis: court order)",
    ):
        assert part in report, part
    assert "Tax office" not in report  # more than a year ago
    export = last_export(bot, ann)
    VALIDATOR.validate(export)
    assert export["profile"]["telegram_id"] == ann.id  # type: ignore[index]
    assert [d["recipient"] for d in export["disclosures"]] == ["Tax office", "Court"]  # type: ignore[union-attr]
    assert [e["source"] for e in export["consents"]["ledger"]] == ["toggle"]  # type: ignore[index]
    assert export["requests"][0]["type"] == "access"  # type: ignore[index]
    await bot.settle()
    assert "Заявление №1 — доступ" in bot.cards()[0].text  # staff can add the rest

    await ann.send("/export")  # one step
    VALIDATOR.validate(last_export(bot, ann))


async def test_the_access_answer_in_russian_on_29_february(
    gdpr_bot: Harness, clock: FrozenClock
) -> None:
    clock.set(datetime(2028, 2, 28, 9, 0, tzinfo=UTC))
    boris = await onboarded(gdpr_bot, "Борис", lang="ru")
    await boris.send("/consents")
    await boris.tap("⬜ Рассылки в Telegram")
    await boris.tap("✅ Согласен(на)")
    await boris.tap("✅ Рассылки в Telegram")  # withdrawn on 28 February
    clock.set(datetime(2028, 2, 29, 9, 0, tzinfo=UTC))  # a leap day: "a year ago" exists
    await boris.send("/rights")
    await boris.tap("🔎 Какие данные обо мне есть?")
    await boris.tap("✅ Отправить заявление")
    report = "\n".join(boris.last.texts)
    for part in (
        "Цели, правовые основания, данные и источники, которые относятся к вам",
        "Рассылки в Telegram: согласие отозвано 28.02.2028; "
        "для этой цели данные не обрабатываются.",
        "Законный интерес: совершенствовать наши услуги",
        "Получатели: правоохранительные и иные компетентные государственные органы",
        "Автоматизированные решения: ActiveCloud не принимает в отношении вас решений",
        "Куда жаловаться: в надзорный орган государства — члена ЕС",
        "Предоставление данных третьим лицам за последний год",
    ):
        assert part in report, part
    last_export(gdpr_bot, boris)


async def test_portability_and_export_in_russian(gdpr_bot: Harness) -> None:
    boris = await onboarded(gdpr_bot, "Борис", lang="ru")
    await boris.send("/rights")
    await boris.tap("📦 Выгрузить мои данные")
    await boris.tap("✅ Отправить заявление")
    boris.expect("Всё, что хранит о вас этот бот (JSON, версия схемы 2)")
    export = last_export(gdpr_bot, boris)
    VALIDATOR.validate(export)
    assert export["profile"]["language"] == "ru"  # type: ignore[index]


def encodings(user_id: int) -> list[bytes]:
    """How an ID can sit in a database file: as text, as a big-endian SQLite record integer, or
    as a PostgreSQL bigint (little-endian on the machines we run on)."""
    found = [str(user_id).encode(), user_id.to_bytes(8, "little")]
    for size in (4, 6, 8):
        if user_id < 2 ** (8 * size - 1):
            found.append(user_id.to_bytes(size, "big"))
    return found


def scan(db: Path, needles: list[bytes]) -> list[tuple[str, bytes]]:
    """Where the needles sit in an SQLite database's files."""
    hits = []
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        if path.exists():
            content = path.read_bytes()
            hits += [(path.name, n) for n in needles if n in content]
    return hits


async def scan_database(bot: Harness, needles: list[bytes]) -> list[tuple[str, bytes]]:
    """Where the needles sit in the bot's database files (SQLite or PostgreSQL)."""
    files = await stored_files(bot.app.engine, bot.db_path)
    return [(name, n) for name, content in files.items() for n in needles if n in content]


async def test_erasure_leaves_no_trace(bot: Harness, clock: FrozenClock) -> None:
    zed = bot.user("Quuxbertina", username="zz_unique_handle", user_id=7_777_777_777)
    await zed.send("/start")
    await zed.tap("16 or older")
    await zed.send("/consents")
    await zed.tap("⬜ Marketing messages")
    await zed.tap("✅ I agree")
    staff = bot.staff("Sam")
    await start_campaign(bot, staff)
    await bot.settle()
    await staff.send(f'/disclose {zed.id} "Tax office" "name" "law"')
    await staff.send(f"/consent {zed.id} cross_border on")
    number = await file_erasure(bot, zed, "Please forget Quuxbertina")
    phone = "+375299998877"
    async with bot.app.sessions() as session:
        user = await session.get(User, zed.id)
        assert user is not None and user.phone == "+375291234567"
    await bot.settle()
    [card] = bot.cards()
    await staff.reply_to(card, "We will erase it")
    await bot.settle()
    await zed.reply_to(zed.inbox[-1], "Thanks, Quuxbertina here")
    await zed.send("/rights")  # a conversation in progress (FSM) is erased too
    await zed.tap("✏️ Correct my data")
    await bot.settle()

    needles = [*encodings(zed.id), b"zz_unique_handle", b"Quuxbertina", phone.encode(),
               b"+375291234567", b"375291234567"]  # fmt: skip
    assert await scan_database(bot, needles)  # the scan does find them before

    async def no_vacuum() -> None:
        raise AssertionError("an erasure must not rewrite the whole file (VACUUM)")

    bot.app.erasure._vacuum = no_vacuum  # type: ignore[method-assign]
    # The WAL is checked right after the erasure: the outbox worker, woken by it or by its
    # poll, would write its claims there meanwhile. The redactions go out in settle() below.
    await bot.app.outbox.stop()
    await staff.tap_data(
        f"v1req:{number}:done", bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]
    )
    assert "Your erasure request is done" in zed.inbox[-1].text  # told once it is committed
    assert (  # checkpointed and truncated right after the erasure
        ON_POSTGRESQL
        or not bot.db_path.with_name("bot.db-wal").exists()
        or (bot.db_path.with_name("bot.db-wal").stat().st_size == 0)
    )
    await bot.settle()  # the stored redactions go out
    await bot.compacted()
    assert await scan_database(bot, needles) == []

    key = pseudonym(PSEUDONYM_SECRET, zed.id)
    async with bot.app.sessions() as session:
        records = list(
            await session.scalars(select(ErasureRecord).where(ErasureRecord.pseudonym == key))
        )
        audit = list(await session.scalars(select(AuditEntry)))
    kinds = [r.kind for r in records]
    assert kinds == ["request", "marketing_sent", "erased"]
    assert json.loads(records[0].detail)["type"] == "erasure"
    assert json.loads(records[1].detail)["consent_given_at"] is not None
    assert any(a.subject == key for a in audit)  # staff acts on the person stay, pseudonymous
    card_text = bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]["text"]
    assert "Quuxbertina" not in card_text and str(zed.id) not in card_text

    await zed.send("/start")  # a new user
    zed.expect("How old are you?")


async def test_a_legal_hold_freezes_then_erases_at_its_date(
    bot: Harness, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.app.reminders.stop()  # the test runs the scheduler's checks itself
    ann, staff, number, card = await erasure_on_the_desk(bot, await subscriber(bot, "Ann"))
    await staff.tap_data(
        f"v1req:{number}:block", bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]
    )
    await staff.reply_to(staff.expect("ответьте датой"), "31.12.2026 accounting records")
    await bot.settle()
    assert "keeping your data until 31 Dec 2026" in ann.inbox[-1].text

    await start_campaign(bot, staff, "Big sale during the hold")
    await bot.settle()
    assert campaign_messages(ann, "during the hold") == []  # nothing but storage
    await ann.send("/consents")
    await ann.tap("⬜ Training models on personal data")
    await ann.tap("✅ I agree")
    assert ann.expect("legal hold").show_alert

    assert await bot.app.erasure.release_holds(bot.app.bot) == 0  # not yet
    clock.set(datetime(2027, 1, 1, 0, 0, tzinfo=bot.pack.zone))
    keys: list[str] = []
    exclusive = erasure_module.exclusive

    def recorded(engine, space, key):  # type: ignore[no-untyped-def]
        keys.append(key)
        return exclusive(engine, space, key)

    monkeypatch.setattr(erasure_module, "exclusive", recorded)
    assert await bot.app.erasure.release_holds(bot.app.bot) == 1
    # One instance erases; its lock (a file on SQLite) is named by the keyed pseudonym, not the ID.
    assert keys == [pseudonym(PSEUDONYM_SECRET, ann.id)]
    assert "The legal hold on your data has ended" in ann.inbox[-1].text
    assert await user_row(bot, ann.id) is None


async def test_restriction_stops_campaigns_until_lifted(bot: Harness) -> None:
    ann = await subscriber(bot, "Ann")
    staff = bot.staff("Sam")
    await ann.send("/rights")
    await ann.tap("⏸ Restrict processing")
    await ann.tap("Skip")
    await ann.tap("✅ Send the request")
    await bot.settle()
    [card] = bot.cards()
    await staff.tap("✅ Выполнено")
    prompt = staff.expect("до какого числа ограничить обработку")
    await staff.reply_to(prompt, "someday")
    staff.expect("Ответьте будущей датой")
    await staff.send("-")
    await bot.settle()
    assert "your data is only stored" in ann.inbox[-1].text

    await start_campaign(bot, staff, "Big sale one")
    await bot.settle()
    assert campaign_messages(ann, "sale one") == []
    assert "Отправлено 0, пропущено 1" in bot.fake.events[-1].text

    await staff.tap_data("v1req:1:lift", bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)])
    await bot.settle()
    assert "has been lifted" in ann.inbox[-1].text
    await start_campaign(bot, staff, "Big sale two")
    await bot.settle()
    assert len(campaign_messages(ann, "sale two")) == 1


async def test_correction_is_applied(bot: Harness) -> None:
    ann = await onboarded(bot, "Ann")
    staff = bot.staff("Sam")
    await ann.send("/rights")
    await ann.tap("✏️ Correct my data")
    await ann.send_contact("+375291234567", user_id=ann.id)
    await ann.tap("First name")
    await ann.send("Annabel")
    ann.expect("Data: First name")
    await ann.tap("✅ Send the request")
    await bot.settle()
    await staff.tap("✅ Выполнено")
    await bot.settle()
    user = await user_row(bot, ann.id)
    assert user is not None and user.first_name == "Annabel"
    assert "Request #1 (correction) is done" in ann.inbox[-1].text
    async with bot.app.sessions() as session:
        audit = [(a.action, a.subject) for a in await session.scalars(select(AuditEntry))]
    assert ("data.corrected", "request:1:first_name") in audit
    assert not any("Annabel" in str(entry) for entry in audit)  # the field, never the value


async def test_objection_to_marketing_takes_effect_at_once(bot: Harness) -> None:
    ann = await subscriber(bot, "Ann")
    staff = bot.staff("Sam")
    await ann.send("/rights")
    await ann.tap("✋ Object to processing")
    await ann.tap("Marketing messages")
    await ann.send("No more offers, please")
    await ann.tap("✅ Send the request")
    ann.expect("Your objection to marketing took effect at once")
    async with bot.app.sessions() as session:
        last = await session.scalar(
            select(ConsentEvent)
            .where(ConsentEvent.user_id == ann.id)
            .order_by(ConsentEvent.id.desc())
        )
    assert last is not None and (last.granted, last.source) == (False, "objection")
    await staff.send("/campaign After the objection")
    staff.expect("Получателей с согласием сейчас: 0")
    await bot.settle()
    assert "Статус: ✅ выполнено" in bot.cards()[0].text  # for information; no decision needed

    await ann.send("/rights")  # an objection to legitimate interests waits for staff
    await ann.tap("✋ Object to processing")
    await ann.tap("Security and analytics")
    await ann.send("No profiling")
    await ann.tap("✅ Send the request")
    ann.expect("Request #2 received: objection")
    await bot.settle()
    assert "Статус: 🆕 принято" in bot.cards()[1].text


# Ann's ID in the byte-scan tests below: ten digits, so its encodings stand out in a byte scan.
TEN_DIGIT_ID = 8_888_888_888


async def test_a_busy_database_defers_compaction_until_it_can(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.app.reminders.stop()  # the test runs the scheduler's checks itself
    ann = await onboarded(bot, "Ann", user_id=TEN_DIGIT_ID)
    _, staff, number, card = await erasure_on_the_desk(bot, ann)
    erasure = bot.app.erasure
    real = erasure._compact

    async def busy() -> None:
        raise OperationalError("VACUUM", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(erasure, "_compact", busy)
    await staff.tap_data(
        f"v1req:{number}:done", bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]
    )
    assert await user_row(bot, ann.id) is None  # erased all the same, no error for staff
    assert not await erasure.compact_if_pending()  # still busy
    monkeypatch.setattr(erasure, "_compact", real)
    assert await erasure.compact_if_pending()  # the scheduler's next try
    assert not await erasure.compact_if_pending()  # nothing left to do
    assert await scan_database(bot, encodings(ann.id)) == []


@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite keeps no rows for older transactions")
async def test_the_compaction_waits_for_a_transaction_older_than_the_erasure(bot: Harness) -> None:
    """A report still open when an erasure commits may read the erased rows, so PostgreSQL keeps
    them and VACUUM FULL would copy them into the rewritten tables: the compaction waits, its
    flag stays, and the first try after the report ended leaves nothing behind."""
    ann = await onboarded(bot, "Ann", user_id=TEN_DIGIT_ID)
    _, staff, number, card = await erasure_on_the_desk(bot, ann)
    erasure = bot.app.erasure
    async with bot.app.engine.connect() as connection:
        report = await connection.execution_options(isolation_level="REPEATABLE READ")
        # Its snapshot is taken now, before the erasure; it reads a table the compaction does
        # not rewrite, so only the horizon, not a lock, can hold the compaction back.
        assert await report.scalar(text("SELECT version_num FROM alembic_version"))
        await staff.tap_data(
            f"v1req:{number}:done", bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]
        )
        assert await user_row(bot, ann.id) is None
        await bot.settle()
        assert not await erasure.compact_if_pending()  # deferred, however often it is tried
        pending = await bot.pending_compaction()
        assert pending is not None and pending.erasures == 1
        assert await scan_database(bot, encodings(ann.id))  # kept for the report
    await bot.compacted()  # the scheduler's next try (or the one after, see Harness.compacted)
    assert await scan_database(bot, encodings(ann.id)) == []


async def test_an_erasure_during_the_compaction_is_compacted_by_the_next_try(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compaction clears the flag only if it still holds the value it compacted for."""
    await bot.app.reminders.stop()  # the test runs the scheduler's checks itself
    ann = await onboarded(bot, "Ann")
    bob = await onboarded(bot, "Bob")
    erasure = bot.app.erasure

    async def erase(person: Person) -> None:
        assert await erasure.execute(
            bot.app.bot, person.id, cause="test", notice="requests.erased", compact=False
        )

    await erase(ann)
    first = await bot.pending_compaction()
    assert first is not None and (first.kind, first.erasures) == (SCRUB, 1)
    real = erasure._compact

    async def compact_while_bob_is_erased() -> None:
        await real()
        await erase(bob)

    monkeypatch.setattr(erasure, "_compact", compact_while_bob_is_erased)
    assert await erasure.compact_if_pending()
    second = await bot.pending_compaction()
    assert second is not None and second.erasures == 2  # Bob's erasure still to compact
    assert int(second.mark or 0) >= int(first.mark or 0)
    monkeypatch.setattr(erasure, "_compact", real)
    await bot.compacted()
    assert await bot.pending_compaction() is None


def test_the_flag_keeps_the_newest_mark_of_all_pending_erasures() -> None:
    first = Pending(SCRUB).after_erasure("700")
    assert (str(first), Pending.parse(str(first))) == ("scrub 700 1", first)
    # An erasure that began before the first but committed after it: the compaction must still
    # wait for the first one's older transactions.
    assert first.after_erasure("650") == Pending(SCRUB, "700", 2)
    assert first.after_erasure("900") == Pending(SCRUB, "900", 2)
    # Migration 0006's flag (and one written before marks) has nothing to wait for; an erasure
    # after it keeps the full rewrite.
    assert Pending.parse(FULL) == Pending(FULL) and Pending.parse("scrub") == Pending(SCRUB)
    assert str(Pending(FULL)) == FULL
    assert Pending.parse(FULL).after_erasure("5") == Pending(FULL, "5", 1)


async def test_a_restriction_ends_at_its_date(bot: Harness, clock: FrozenClock) -> None:
    ann = await subscriber(bot, "Ann")
    staff = bot.staff("Sam")
    await ann.send("/rights")
    await ann.tap("⏸ Restrict processing")
    await ann.tap("Skip")
    await ann.tap("✅ Send the request")
    await bot.settle()
    await staff.tap("✅ Выполнено")
    await staff.reply_to(staff.expect("до какого числа"), "10.12.2026")
    await start_campaign(bot, staff, "Big sale before")
    await bot.settle()
    assert campaign_messages(ann, "sale before") == []
    clock.set(datetime(2026, 12, 11, 9, 0, tzinfo=bot.pack.zone))
    await start_campaign(bot, staff, "Big sale after")
    await bot.settle()
    assert len(campaign_messages(ann, "sale after")) == 1
