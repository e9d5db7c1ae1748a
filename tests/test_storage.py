from __future__ import annotations

from pathlib import Path

import pytest
from aiogram.fsm.storage.base import StorageKey
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from bot.domain.erasure import COMPACT_PENDING, SCRUB, Pending, note_erasure
from storage import migrate
from storage.crypto import MasterKeys
from storage.db import create_engine, session_factory
from storage.dialect import (
    AppendOnlyLifted,
    _widen,
    claimable,
    compact,
    horizon_passed,
    transaction_mark,
)
from storage.fsm import SqlStorage
from storage.models import Base, BotState, FsmRecord, Personal
from storage.repositories import APPEND_ONLY, ERASED_TABLES
from tests.engines import ON_POSTGRESQL, TEST_DATABASE_URL

MASTER = MasterKeys(b"k" * 32)


@pytest.fixture
async def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The suite's engine: SQLite, or PostgreSQL with TEST_DATABASE_URL (tests.engines)."""
    sqlite_file = None if ON_POSTGRESQL else tmp_path / "sub/dir/t.db"
    url = TEST_DATABASE_URL or f"sqlite+aiosqlite:///{sqlite_file}"
    engine = create_engine(url, sqlite_file)
    await migrate.upgrade(engine, MASTER)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sqlite_engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/s/t.db", tmp_path / "s/t.db")
    await migrate.upgrade(engine, MASTER)
    yield engine
    await engine.dispose()


async def test_migrations_create_exactly_the_models(engine) -> None:  # type: ignore[no-untyped-def]
    def compare_type(context, inspected, metadata, inspected_type, metadata_type):  # type: ignore[no-untyped-def]
        # On SQLite, 0006 leaves old VARCHAR(n) declarations of now-sealed columns alone:
        # SQLite ignores lengths, and rebuilding `users` would cascade through foreign keys.
        if isinstance(metadata_type, Personal) and context.dialect.name == "sqlite":
            return False
        return None

    def diff(connection):  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(connection, opts={"compare_type": compare_type})
        return compare_metadata(context, Base.metadata)

    async with engine.connect() as connection:
        assert await connection.run_sync(diff) == []
        version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    assert version == migrate.HEAD
    await migrate.upgrade(engine, MASTER)  # a second start is a no-op


async def test_a_start_at_head_does_not_run_alembic(engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from alembic import command
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    assert head == migrate.HEAD, "a new migration: set storage.migrate.HEAD to its revision"

    def refuse(*_: object) -> None:
        raise AssertionError("Alembic ran at a start with nothing to migrate")

    monkeypatch.setattr(command, "upgrade", refuse)
    await migrate.upgrade(engine, MASTER)
    assert await migrate.current_revision(engine) == head


async def test_sqlite_pragmas(sqlite_engine) -> None:  # type: ignore[no-untyped-def]
    async with sqlite_engine.connect() as connection:
        assert await connection.scalar(text("PRAGMA journal_mode")) == "wal"
        assert await connection.scalar(text("PRAGMA foreign_keys")) == 1
        assert await connection.scalar(text("PRAGMA busy_timeout")) == 5000


async def test_fsm_storage_round_trips_through_json_and_survives_restart(engine) -> None:  # type: ignore[no-untyped-def]
    key = StorageKey(bot_id=1, chat_id=42, user_id=42)
    storage = SqlStorage(engine, MASTER)
    await storage.set_state(key, "Flow:step")
    await storage.set_data(key, {"link_id": 7, "text": "привет", "nested": {"a": [1, 2]}})

    reopened = SqlStorage(engine, MASTER)
    assert await reopened.get_state(key) == "Flow:step"
    assert await reopened.get_data(key) == {"link_id": 7, "text": "привет", "nested": {"a": [1, 2]}}
    assert await reopened.update_data(key, {"more": True}) == {
        "link_id": 7,
        "text": "привет",
        "nested": {"a": [1, 2]},
        "more": True,
    }

    with pytest.raises(TypeError):
        await reopened.set_data(key, {"not json": object()})

    await reopened.set_state(key, None)
    await reopened.set_data(key, {})
    async with session_factory(engine, MASTER)() as session:
        assert await session.get(FsmRecord, "fsm:1:42:42") is None  # nothing left behind


async def test_request_numbers_migration_keeps_every_row_and_every_number(tmp_path: Path) -> None:
    """The SQLite rebuild for AUTOINCREMENT must not cascade into child rows, and numbers kept in
    erasure records before the migration stay taken."""
    from alembic import command

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/old.db", tmp_path / "old.db")

    def to(revision: str):  # type: ignore[no-untyped-def]
        return lambda connection: command.upgrade(
            migrate.alembic_config(connection, MASTER), revision
        )

    try:
        async with engine.begin() as connection:
            await connection.run_sync(to("0011_request_message_kind"))
            for statement in (
                "INSERT INTO users (id, language, blocked_bot, created_at) "
                "VALUES (1, 'en', 0, '2026-01-01')",
                "INSERT INTO requests (id, user_id, type, details, status, verification, "
                "received_at, due_at, user_unreachable) VALUES (3, 1, 'access', '{}', "
                "'received', 'telegram_id', '2026-01-01', '2026-01-02', 0)",
                "INSERT INTO relay_links (chat_id, message_id, request_id) VALUES (1, 1, 3)",
                "INSERT INTO outbox (created_at, kind, request_id, status, attempts, "
                "next_attempt_at) VALUES ('2026-01-01', 'card', 3, 'uncertain', 1, '2026-01-01')",
                "INSERT INTO erasure_records (pseudonym, kind, at, detail) "
                "VALUES ('p', 'request', '2026-01-01', '{\"number\": 7}')",
            ):
                await connection.execute(text(statement))
        await migrate.upgrade(engine, MASTER)
        async with engine.begin() as connection:
            assert await connection.scalar(text("SELECT count(*) FROM relay_links")) == 1
            outbox = (await connection.execute(text("SELECT status, repeated FROM outbox"))).one()
            assert tuple(outbox) == ("pending", 1)  # sent again, marked
            await connection.execute(
                text(
                    "INSERT INTO requests (user_id, type, details, status, verification, "
                    "received_at, due_at, user_unreachable) VALUES (1, 'access', '{}', "
                    "'received', 'telegram_id', '2026-01-01', '2026-01-02', 0)"
                )
            )
            assert await connection.scalar(text("SELECT max(id) FROM requests")) == 8
    finally:
        await engine.dispose()


ERASURE_LOOKUPS = (
    "UPDATE consent_events SET actor_id = 0 WHERE actor_id = 1",
    "SELECT 1 FROM consent_states WHERE event_id = 1",
    "UPDATE audit_log SET subject = 'x' WHERE subject = '1'",
    "UPDATE guardian_links SET used_by = NULL WHERE used_by = 1",
    "SELECT 1 FROM guardian_confirmations WHERE link_id = 1",
)


@pytest.mark.parametrize("sql", ERASURE_LOOKUPS)
async def test_erasure_lookups_use_an_index(sqlite_engine, sql: str) -> None:  # type: ignore[no-untyped-def]
    """An erasure finds a person's rows through indexes, never by scanning a table."""
    async with sqlite_engine.connect() as connection:
        plan = (await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")).all()
    details = " | ".join(str(row[-1]) for row in plan)
    assert "USING" in details and "INDEX" in details, details
    assert not any(str(row[-1]).startswith("SCAN") for row in plan), details


async def _ledger_row(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO users (id, language, blocked_bot, created_at) "
                "VALUES (1, 'en', false, CURRENT_TIMESTAMP)"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO consent_events (user_id, purpose, granted, at, policy_version, "
                "source, actor_id) VALUES (1, 'marketing', true, CURRENT_TIMESTAMP, '1', "
                "'toggle', 7)"
            )
        )


async def test_the_ledger_is_append_only_except_inside_an_erasure(engine) -> None:  # type: ignore[no-untyped-def]
    """On either engine: UPDATE is refused by a trigger; only an erasure's own transaction may
    rewrite the ledger, and the refusal is back for everyone afterwards."""
    await _ledger_row(engine)
    sessions = session_factory(engine, MASTER)
    async with sessions() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text("UPDATE consent_events SET actor_id = 0"))
    async with sessions() as session:
        async with AppendOnlyLifted(session, APPEND_ONLY):
            await session.execute(text("UPDATE consent_events SET actor_id = 0"))
        with pytest.raises(DBAPIError, match="append-only"):  # restored in the same transaction
            await session.execute(text("UPDATE consent_events SET actor_id = 1"))
    async with sessions() as session:
        async with AppendOnlyLifted(session, APPEND_ONLY):
            await session.execute(text("UPDATE consent_events SET actor_id = 0"))
        await session.commit()
    async with sessions() as session:
        assert await session.scalar(text("SELECT actor_id FROM consent_events")) == 0
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text("UPDATE consent_events SET actor_id = 5"))


async def test_compaction_waits_for_older_transactions(engine) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL keeps deleted rows for transactions older than the deleting one, so the mark
    of an erasure only passes once those ended. SQLite has no such horizon."""
    sessions = session_factory(engine, MASTER)
    async with sessions() as older:
        await older.execute(text("INSERT INTO bot_state (key, value) VALUES ('a', 'b')"))
        async with sessions() as erasing:
            mark = await transaction_mark(erasing)
            await erasing.commit()
        assert await horizon_passed(engine, mark) is (not ON_POSTGRESQL)
        await older.commit()
    assert await horizon_passed(engine, mark)
    await compact(engine, ERASED_TABLES)  # runs on both engines


@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite keeps no rows for older transactions")
async def test_a_reader_older_than_the_erasure_holds_the_horizon(engine) -> None:  # type: ignore[no-untyped-def]
    """A REPEATABLE READ reader has no transaction ID, only a snapshot taken before the erasure:
    it can still read the deleted rows, so the horizon waits for it (the oldest running
    transaction ID alone would say it has passed)."""
    sessions = session_factory(engine, MASTER)
    async with engine.connect() as connection:
        reader = await connection.execution_options(isolation_level="REPEATABLE READ")
        await reader.scalar(text("SELECT count(*) FROM bot_state"))
        async with sessions() as erasing:
            await erasing.execute(text("INSERT INTO bot_state (key, value) VALUES ('a', 'b')"))
            mark = await transaction_mark(erasing)
            await erasing.commit()
        assert not await horizon_passed(engine, mark)
    assert await horizon_passed(engine, mark)


@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite runs one writing transaction at a time")
async def test_the_flag_keeps_the_newest_erasure_whichever_commits_first(engine) -> None:  # type: ignore[no-untyped-def]
    sessions = session_factory(engine, MASTER)
    async with sessions() as older, sessions() as newer:
        await older.execute(text("INSERT INTO bot_state (key, value) VALUES ('o', '1')"))
        older_mark = await transaction_mark(older)
        await newer.execute(text("INSERT INTO bot_state (key, value) VALUES ('n', '1')"))
        newer_mark = await transaction_mark(newer)
        assert int(newer_mark) > int(older_mark)
        await note_erasure(newer)
        await newer.commit()
        await note_erasure(older)
        await older.commit()
    async with sessions() as session:
        value = await session.scalar(
            text("SELECT value FROM bot_state WHERE key = :key"), {"key": COMPACT_PENDING}
        )
    assert Pending.parse(value) == Pending(SCRUB, newer_mark, 2)


def test_transaction_ids_are_widened_across_wraparound() -> None:
    """pg_stat_activity shows 32-bit transaction IDs; marks are 64-bit (epoch and ID)."""
    epoch = 2**32
    assert _widen(1000, 5 * epoch + 1200) == 5 * epoch + 1000
    assert _widen(1300, 5 * epoch + 1200) == 5 * epoch + 1300  # a snapshot taken just after
    assert _widen(epoch - 10, 5 * epoch + 5) == 5 * epoch - 10  # before the wrap
    assert _widen(3, 5 * epoch - 2) == 5 * epoch + 3  # after it


async def test_claimable_rows_are_skipped_while_another_instance_holds_them(engine) -> None:  # type: ignore[no-untyped-def]
    """FOR UPDATE SKIP LOCKED on PostgreSQL: a second worker does not wait for, nor take, the
    rows the first one is claiming. SQLite serialises writers and omits the clause."""
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO bot_state (key, value) VALUES ('k1', 'v'), ('k2', 'v')")
        )
    query = claimable(select(BotState.key).order_by(BotState.key).limit(1))
    sessions = session_factory(engine, MASTER)
    async with sessions() as first:
        assert (await first.scalars(query)).all() == ["k1"]
        if ON_POSTGRESQL:
            async with sessions() as second:
                assert (await second.scalars(query)).all() == ["k2"]
    assert "SKIP LOCKED" not in str(query.compile(dialect=sqlite.dialect()))
    assert "FOR UPDATE SKIP LOCKED" in str(query.compile(dialect=postgresql.dialect()))
