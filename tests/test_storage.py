from __future__ import annotations

from pathlib import Path

import pytest
from aiogram.fsm.storage.base import StorageKey
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from storage import migrate
from storage.crypto import MasterKeys
from storage.db import create_engine, session_factory
from storage.fsm import SqlStorage
from storage.models import Base, FsmRecord, Personal

MASTER = MasterKeys(b"k" * 32)


@pytest.fixture
async def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = create_engine(
        f"sqlite+aiosqlite:///{tmp_path}/sub/dir/t.db", tmp_path / "sub/dir/t.db"
    )
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
    assert version is not None
    await migrate.upgrade(engine, MASTER)  # a second start is a no-op


async def test_sqlite_pragmas(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.connect() as connection:
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
            await connection.run_sync(to("0008_breaches_last_seen"))
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
