"""Engine and session factory: SQLite in WAL mode, with a busy timeout and foreign keys on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage.crypto import MasterKeys
from storage.sealing import MASTER
from storage.sqlite_driver import LeanAiosqlite

BUSY_TIMEOUT_MS = 5000
# Each update holds one connection and the FSM storage briefly takes a second one, so the pool
# must hold twice the updates allowed at once (bot.middlewares.MAX_CONCURRENT_UPDATES) plus the
# workers (outbox, campaigns, reminders).
POOL_SIZE = 24


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Deleted content is overwritten with zeros, so an erasure leaves nothing in free pages.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def private_file(path: Path) -> None:
    """Create the database's directory (0700) and file (0600) for the owner only, before SQLite
    opens it; SQLite gives its -wal and -shm files the same permissions as the database."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def create_engine(url: str, sqlite_file: Path | None = None) -> AsyncEngine:
    if sqlite_file is not None:
        private_file(sqlite_file)
    options: dict[str, Any] = {}
    if make_url(url).drivername == "sqlite+aiosqlite":
        options["module"] = LeanAiosqlite()  # one thread trip per statement, BEGIN IMMEDIATE
    # hide_parameters: an error never carries the values of a statement (names, texts).
    engine = create_async_engine(
        url, pool_size=POOL_SIZE, max_overflow=8, hide_parameters=True, **options
    )
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def session_factory(engine: AsyncEngine, master: MasterKeys) -> async_sessionmaker[AsyncSession]:
    """Sessions whose personal fields are sealed and opened with keys unwrapped by `master`."""
    return async_sessionmaker(engine, expire_on_commit=False, info={MASTER: master})


async def _run_outside_transaction(engine: AsyncEngine, *statements: str) -> None:
    if engine.dialect.name != "sqlite":
        return
    async with engine.connect() as connection:
        raw = await connection.execution_options(isolation_level="AUTOCOMMIT")
        for statement in statements:
            await raw.exec_driver_sql(statement)


async def checkpoint(engine: AsyncEngine) -> None:
    """Fold the WAL into the database file and empty it."""
    await _run_outside_transaction(engine, "PRAGMA wal_checkpoint(TRUNCATE)")


async def compact(engine: AsyncEngine) -> None:
    """Leave no deleted bytes behind: fold the WAL into the file, rebuild it, empty the WAL."""
    await _run_outside_transaction(
        engine, "PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"
    )
