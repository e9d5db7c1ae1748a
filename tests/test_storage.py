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


ERASURE_LOOKUPS = (
    "UPDATE consent_events SET actor_id = 0 WHERE actor_id = 1",
    "SELECT 1 FROM consent_states WHERE event_id = 1",
    "UPDATE audit_log SET subject = 'x' WHERE subject = '1'",
    "UPDATE guardian_links SET used_by = NULL WHERE used_by = 1",
    "SELECT 1 FROM guardian_confirmations WHERE link_id = 1",
)


@pytest.mark.parametrize("sql", ERASURE_LOOKUPS)
async def test_erasure_lookups_use_an_index(engine, sql: str) -> None:  # type: ignore[no-untyped-def]
    """An erasure finds a person's rows through indexes, never by scanning a table."""
    async with engine.connect() as connection:
        plan = (await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")).all()
    details = " | ".join(str(row[-1]) for row in plan)
    assert "USING" in details and "INDEX" in details, details
    assert not any(str(row[-1]).startswith("SCAN") for row in plan), details
