"""Encryption at rest: no plain personal data in the database files or a backup at any time;
a backup made before an erasure does not open for the erased person; the master key is
checked at start, rotated without downtime; a plaintext database is sealed at upgrade."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from aiogram.fsm.storage.base import StorageKey
from sqlalchemy import event, select, text

from bot.__main__ import main
from bot.core.clock import FrozenClock
from bot.core.errors import ConfigError
from bot.domain.erasure import pseudonym
from bot.service import maintenance
from storage import migrate
from storage.crypto import (
    DataKeyGone,
    KeyRing,
    current_ring,
    key_id,
    new_master_key,
    parse_master_key,
)
from storage.crypto import MasterKeys as Keys
from storage.db import checkpoint, create_engine
from storage.fsm import SqlStorage
from storage.models import (
    DataKey,
    Disclosure,
    ErasureRecord,
    OutboxItem,
    Request,
    RequestMessage,
    User,
)
from storage.repositories import ErasureRepository
from tests.fake_telegram import FakeTelegram
from tests.kit import ADMIN_CHAT_ID, DATA_KEY, PSEUDONYM_SECRET, Harness
from tests.test_consents import onboarded
from tests.test_execution import last_export, scan, scan_database
from tests.test_requests import file_erasure

MASTER = Keys(parse_master_key(DATA_KEY, "DATA_KEY"))


async def sealed_values(bot: Harness, table: str, column: str) -> list[str]:
    """The stored (sealed) values of a column, as they are in the database."""
    async with bot.app.engine.connect() as connection:
        query = text(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")
        return list((await connection.scalars(query)).all())


async def test_no_plain_personal_data_in_the_files_at_any_time(bot: Harness) -> None:
    zed = bot.user("Quuxbertina", username="zz_unique_handle")
    staff = bot.staff("Sam")
    needles = [b"Quuxbertina", b"zz_unique_handle", b"375291234567", b"Flibbertigibbet",
               b"Wobblegong", b"Snorkeldink", b"Grumbleton"]  # fmt: skip

    async def assert_clean() -> None:
        assert await scan_database(bot, needles) == []

    await zed.send("/start")
    await zed.tap("16 or older")
    await assert_clean()
    await zed.send("/rights")
    await zed.tap("🗑 Erase my data")
    await zed.send_contact("+375 (29) 123-45-67", user_id=zed.id)
    await zed.send("Forget me, Flibbertigibbet")
    await assert_clean()  # the answer waits in the conversation (FSM data), sealed
    await zed.tap("✅ Send the request")
    await bot.settle()
    await assert_clean()
    [card] = bot.cards()
    assert "Quuxbertina" in card.text and "Flibbertigibbet" in card.text  # staff see it all
    await staff.reply_to(card, "Staff answer Wobblegong")
    await bot.settle()
    await zed.reply_to(zed.inbox[-1], "Thanks from Snorkeldink")
    await bot.settle()
    assert "Snorkeldink" in bot.fake.events[-1].text
    await staff.send(f'/disclose {zed.id} "Grumbleton office" "name" "law"')
    await assert_clean()

    await zed.send("/export")  # the export opens everything for its owner
    export = last_export(bot, zed)
    assert export["profile"]["first_name"] == "Quuxbertina"  # type: ignore[index]
    assert export["profile"]["username"] == "zz_unique_handle"  # type: ignore[index]
    [request] = export["requests"]  # type: ignore[misc]
    texts = [m["text"] for m in request["messages"]]
    assert "Staff answer Wobblegong" in texts and "Thanks from Snorkeldink" in texts
    assert export["disclosures"][0]["recipient"] == "Grumbleton office"  # type: ignore[index]
    await checkpoint(bot.app.engine)
    await assert_clean()
    for table, column in (("users", "first_name"), ("requests", "details"),
                          ("request_messages", "text"), ("disclosures", "recipient")):  # fmt: skip
        assert all(v.startswith("p1.") for v in await sealed_values(bot, table, column))


async def test_data_keys_are_unwrapped_once_per_update_and_not_kept(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = await onboarded(bot, "Annelore")
    await file_erasure(bot, ann, "Forget me")
    await bot.settle()
    unwraps: list[int] = []
    lookups: list[str] = []
    real_unwrap = Keys.unwrap

    def unwrap(self: Keys, owner: int, wrapped_by: str, blob: bytes) -> bytes:
        unwraps.append(owner)
        return real_unwrap(self, owner, wrapped_by, blob)

    def count(*args: object) -> None:
        statement = str(args[2])
        if "data_keys" in statement and "JOIN data_keys" not in statement:
            lookups.append(statement)

    monkeypatch.setattr(Keys, "unwrap", unwrap)
    event.listen(bot.app.engine.sync_engine, "before_cursor_execute", count)
    try:
        await ann.send("/export")  # opens her profile, request details and messages
        first = len(unwraps)
        await ann.send("/export")
        after_exports = list(lookups)
        newcomer = bot.user("Newcomer")
        await newcomer.send("/start")
        await newcomer.tap("16 or older")
    finally:
        event.remove(bot.app.engine.sync_engine, "before_cursor_execute", count)
    assert last_export(bot, ann)["profile"]["first_name"] == "Annelore"  # type: ignore[index]
    assert (first, unwraps[:2]) == (1, [ann.id, ann.id])  # cached within an update, not across
    assert after_exports == []  # the sender's key comes with their profile, in the same statement
    # A newcomer's key: known absent from that statement, so one INSERT creates it, no lookups.
    assert [s.split(" (")[0] for s in lookups] == ["INSERT INTO data_keys"]
    assert current_ring() is None


async def test_the_key_goes_in_the_erasure_transaction_first(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = await onboarded(bot, "Annelore")
    statements: list[str] = []

    def record(*args: object) -> None:
        # Only the erasure's own statements: the background workers share the engine.
        if asyncio.current_task() is erasing:
            statements.append(str(args[2]).split("(")[0].strip())

    real_erase = ErasureRepository.erase

    async def erase_then_fail(self: ErasureRepository, user_id: int, key: str) -> None:
        await real_erase(self, user_id, key)
        raise RuntimeError("crash before the commit")

    notice = "requests.hold_ended"
    erase = partial(bot.app.erasure.execute, bot.app.bot, ann.id, cause="t", notice=notice)
    monkeypatch.setattr(ErasureRepository, "erase", erase_then_fail)
    event.listen(bot.app.engine.sync_engine, "before_cursor_execute", record)
    erasing = asyncio.current_task()
    try:
        with pytest.raises(RuntimeError):
            await bot.app.erasure.execute(
                bot.app.bot, ann.id, cause="t", notice="requests.hold_ended"
            )
    finally:
        event.remove(bot.app.engine.sync_engine, "before_cursor_execute", record)
    deletes = [s for s in statements if s.startswith(("DELETE", "UPDATE", "DROP"))]
    assert deletes[0].startswith("DELETE FROM data_keys WHERE data_keys.owner_id = ")
    async with bot.app.sessions() as session:  # nothing happened: one transaction
        assert await session.get(DataKey, ann.id) is not None
        user = await session.get(User, ann.id)
        assert user is not None and user.first_name == "Annelore"
    monkeypatch.undo()
    await erase()
    async with bot.app.sessions() as session:
        assert await session.get(DataKey, ann.id) is None
        assert await session.get(User, ann.id) is None


def operator_env(monkeypatch: pytest.MonkeyPatch, bot: Harness, **extra: str) -> None:
    for name, value in {
        "BOT_TOKEN": bot.settings.bot_token.get_secret_value(),
        "ADMIN_CHAT_ID": str(ADMIN_CHAT_ID),
        "PSEUDONYM_SECRET": PSEUDONYM_SECRET,
        "DATABASE_URL": bot.settings.database_url,
        "TELEGRAM_API_URL": bot.settings.telegram_api_url,
        "DATA_KEY": DATA_KEY,
        **extra,
    }.items():
        monkeypatch.setenv(name, value)


async def test_a_backup_made_before_an_erasure_does_not_open_for_the_erased(
    sqlite_bot: Harness,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bot = sqlite_bot  # backups and restores are of SQLite files (PostgreSQL: pg_dump)
    ann = await onboarded(bot, "Annelore")
    zed = await onboarded(bot, "Quuxbertina")
    await file_erasure(bot, zed, "Forget Flibbertigibbet")
    await bot.settle()
    copy = tmp_path / "backups" / "before.db"
    copy.parent.mkdir()
    operator_env(monkeypatch, bot)
    monkeypatch.chdir(tmp_path)
    assert await asyncio.to_thread(main, ["backup", str(copy)]) == 0
    assert "Backup written" in capsys.readouterr().out
    assert [p.name for p in copy.parent.iterdir()] == ["before.db"]  # one file, no WAL beside it
    assert await asyncio.to_thread(main, ["backup", str(copy)]) == 2  # never overwritten

    await bot.app.erasure.execute(bot.app.bot, zed.id, cause="test", notice="requests.hold_ended")

    # The backup holds everyone's fields, sealed, and no data key at all.
    assert scan(copy, [b"Annelore", b"Quuxbertina", b"Flibbertigibbet"]) == []
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT COUNT(*) FROM data_keys").fetchone() == (0,)
        names = dict(db.execute("SELECT id, first_name FROM users").fetchall())
        [details] = db.execute("SELECT details FROM requests WHERE user_id = ?", (zed.id,))
    assert set(names) == {ann.id, zed.id}
    # With the keys that exist now, Ann's fields open and the erased person's never will.
    ring = KeyRing(MASTER)
    async with bot.app.engine.connect() as connection:
        assert await connection.run_sync(lambda c: ring.open(c, names[ann.id])) == "Annelore"
        for token in (names[zed.id], details[0]):
            with pytest.raises(DataKeyGone):
                await connection.run_sync(lambda c, t=token: ring.open(c, t))

    # Restoring it brings Ann back and erases the erased person again.
    await bot.stop()
    empty = tmp_path / "empty" / "bot.db"
    empty.parent.mkdir()
    with sqlite3.connect(empty) as db:
        db.execute("CREATE TABLE data_keys (owner_id INTEGER)")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{empty}")
    assert await asyncio.to_thread(main, ["restore", str(copy)]) == 2  # no keys: nothing done
    assert "holds no data keys" in capsys.readouterr().err
    monkeypatch.setenv("DATABASE_URL", bot.settings.database_url)
    assert await asyncio.to_thread(main, ["restore", str(copy)]) == 0
    assert "erased again 1 people" in capsys.readouterr().out
    await bot.start()
    async with bot.app.sessions() as session:
        users = {u.id: u.first_name for u in await session.scalars(select(User))}
        requests = list(await session.scalars(select(Request)))
        kinds = [
            r.kind
            for r in await session.scalars(
                select(ErasureRecord).where(
                    ErasureRecord.pseudonym == pseudonym(PSEUDONYM_SECRET, zed.id)
                )
            )
        ]
    assert users == {ann.id: "Annelore"} and requests == []
    assert kinds == ["request", "erased"]  # the record of the erasure survives the restore
    await ann.send("/export")
    assert last_export(bot, ann)["profile"]["first_name"] == "Annelore"  # type: ignore[index]
    assert scan(bot.db_path, [b"Quuxbertina", b"Flibbertigibbet"]) == []


async def test_postgres_backups_are_left_to_pg_dump(
    bot: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    operator_env(monkeypatch, bot, DATABASE_URL="postgresql+asyncpg://u@localhost/db")
    assert main(["backup", "x.db"]) == 2
    assert "pg_dump --exclude-table-data=data_keys" in capsys.readouterr().err
    assert main(["nonsense"]) == 2
    assert "Usage: python -m bot" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"DATA_KEY": new_master_key()}, "DATA_KEY (key "),
        ({"DATA_KEY": "", "DATA_KEY_FILE": "missing.key"}, "DATA_KEY_FILE missing.key cannot be"),
    ],
)
async def test_a_wrong_master_key_stops_with_one_line(
    bot: Harness,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: dict[str, str],
    named: str,
) -> None:
    await onboarded(bot, "Ann")
    await bot.stop()
    operator_env(monkeypatch, bot, **extra)
    if extra.get("DATA_KEY") == "":
        monkeypatch.delenv("DATA_KEY")
    monkeypatch.chdir(tmp_path)
    assert await asyncio.to_thread(main) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith("Configuration error: ") and named in err
    assert DATA_KEY not in err


async def test_rotation_keeps_every_user_readable_without_downtime(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = Harness(fake, tmp_path, clock=clock)
    await first.start()
    people = [await onboarded(first, f"Person{i}") for i in range(5)]
    await first.stop()

    new = new_master_key()
    # The bot runs with the new key and the previous one while the keys are re-wrapped.
    during = Harness(fake, tmp_path, clock=clock, data_key=new, data_key_previous=DATA_KEY)
    await during.start()
    message, later = await asyncio.gather(
        maintenance.rotate_key(during.settings), onboarded(during, "Latecomer")
    )
    assert "none is left under another key" in message
    again = during.user("Person0", user_id=people[0].id)
    await again.send("/export")
    assert last_export(during, again)["profile"]["first_name"] == "Person0"  # type: ignore[index]
    new_id = key_id(parse_master_key(new, "new"))
    async with during.app.engine.connect() as connection:
        assert set((await connection.scalars(select(DataKey.wrapped_by))).all()) == {new_id}
    await during.stop()

    after = Harness(fake, tmp_path, clock=clock, data_key=new)  # the old key is thrown away
    await after.start()
    try:
        async with after.app.sessions() as session:
            names = {u.id: u.first_name for u in await session.scalars(select(User))}
        assert names == {p.id: f"Person{i}" for i, p in enumerate(people)} | {later.id: "Latecomer"}
    finally:
        await after.stop()
    with pytest.raises(ConfigError, match="does not open the data keys"):
        await Harness(fake, tmp_path, clock=clock).start()  # the old key opens nothing now


async def test_the_upgrade_seals_a_plaintext_database_in_place(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock
) -> None:
    path = tmp_path / "bot.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}", path)
    await migrate.upgrade(engine, MASTER, "0004")
    at = datetime(2026, 11, 1, tzinfo=UTC).replace(tzinfo=None)
    rows = {
        "users": dict(id=42, username="zz_old_handle", first_name="Quuxbertina", last_name=None,
                      language="en", blocked_bot=False, phone="+375291234567", created_at=at),
        "requests": dict(id=1, user_id=42, type="erasure", details='{"reason": "Flibbertigibbet"}',
                         status="new", verification="phone", received_at=at, due_at=at,
                         user_unreachable=False, reason="Grumbleton"),
        "request_messages": dict(id=1, request_id=1, at=at, author="user", kind="reply",
                                 text="Snorkeldink speaking"),
        "outbox": dict(id=1, created_at=at, kind="to_staff", user_id=None, request_id=1,
                       text="Wobblegong", status="sent", attempts=1, next_attempt_at=at),
        "disclosures": dict(id=1, user_id=42, at=at, recipient="Tax office Zorblat",
                            data="name", legal_basis="law", staff_id=7),
        "fsm_states": dict(key="fsm:42:42", chat_id=42, user_id=42, state="RightsFlow:answer",
                           data='{"answers": {"reason": "Blimpfizzle"}}'),
    }  # fmt: skip
    async with engine.begin() as connection:
        for table, values in rows.items():
            columns = ", ".join(values)
            marks = ", ".join(f":{c}" for c in values)
            await connection.execute(
                text(f"INSERT INTO {table} ({columns}) VALUES ({marks})"), values
            )
    await engine.dispose()
    needles = [b"zz_old_handle", b"Quuxbertina", b"375291234567", b"Flibbertigibbet",
               b"Grumbleton", b"Snorkeldink", b"Wobblegong", b"Zorblat",
               b"Blimpfizzle"]  # fmt: skip
    assert len(scan(path, needles)) == len(needles)

    bot = Harness(fake, tmp_path, clock=clock, database_url=f"sqlite+aiosqlite:///{path}")
    await bot.start()  # migrates, seals, compacts
    try:
        assert scan(path, needles) == []
        async with bot.app.sessions() as session:
            user = await session.get(User, 42)
            request = await session.get(Request, 1)
            item = await session.get(OutboxItem, 1)
            disclosure = await session.get(Disclosure, 1)
            said = await session.get(RequestMessage, 1)  # kept through 0011's rebuild of its table
            owners = set(await session.scalars(select(DataKey.owner_id)))
        assert user is not None and (user.first_name, user.username, user.phone) == (
            "Quuxbertina", "zz_old_handle", "+375291234567")  # fmt: skip
        assert request is not None and request.reason == "Grumbleton"
        assert said is not None and (said.kind, said.text) == ("reply", "Snorkeldink speaking")
        assert item is not None and item.text == "Wobblegong"  # sealed for the request's user
        assert disclosure is not None and disclosure.recipient == "Tax office Zorblat"
        assert owners - {0} == {42}  # 0: staff's own texts (start-up notes to the admin group)
        storage = SqlStorage(bot.app.engine, bot.settings.master_keys())
        key = StorageKey(bot_id=1, chat_id=42, user_id=42)
        assert await storage.get_data(key) == {"answers": {"reason": "Blimpfizzle"}}
    finally:
        await bot.stop()
