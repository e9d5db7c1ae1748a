"""Engine and session factory: SQLite in WAL mode, with a busy timeout and foreign keys on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.exc import OperationalError
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


def create_engine(url: str, sqlite_file: Path | None = None) -> AsyncEngine:
    if sqlite_file is not None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {}
    if make_url(url).drivername == "sqlite+aiosqlite":
        options["module"] = LeanAiosqlite()  # one thread trip per statement, BEGIN IMMEDIATE
    engine = create_async_engine(url, pool_size=POOL_SIZE, max_overflow=8, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def session_factory(engine: AsyncEngine, master: MasterKeys) -> async_sessionmaker[AsyncSession]:
    """Sessions whose personal fields are sealed and opened with keys unwrapped by `master`."""
    return async_sessionmaker(engine, expire_on_commit=False, info={MASTER: master})


async def _run_outside_transaction(engine: AsyncEngine, *statements: str) -> bool:
    """Run PRAGMAs/VACUUM outside a transaction; False when a checkpoint could not complete
    (a reader still needed the WAL)."""
    if engine.dialect.name != "sqlite":
        return True
    complete = True
    async with engine.connect() as connection:
        raw = await connection.execution_options(isolation_level="AUTOCOMMIT")
        for statement in statements:
            result = await raw.exec_driver_sql(statement)
            if statement.startswith("PRAGMA wal_checkpoint"):
                row = result.first()  # (busy, WAL pages, pages folded)
                complete = complete and (row is None or not row[0])
    return complete


async def checkpoint(engine: AsyncEngine) -> None:
    """Fold the WAL into the database file and empty it."""
    await _run_outside_transaction(engine, "PRAGMA wal_checkpoint(TRUNCATE)")


async def scrub(engine: AsyncEngine) -> None:
    """After an erasure: no deleted bytes stay readable, without rewriting the whole file.

    `secure_delete` zeroes deleted content in the pages as they are written; the old page
    images live on only in the WAL, which is folded into the file and truncated here. This
    touches only the pages the WAL holds (a VACUUM rewrote the whole file and held the
    database for seconds at a million users). Raises OperationalError while a reader still
    needs the WAL, so the caller retries later."""
    if not await _run_outside_transaction(engine, "PRAGMA wal_checkpoint(TRUNCATE)"):
        raise OperationalError("PRAGMA wal_checkpoint(TRUNCATE)", {}, Exception("WAL busy"))


async def compact(engine: AsyncEngine) -> None:
    """Leave no deleted bytes behind: fold the WAL into the file, rebuild it, empty the WAL."""
    await _run_outside_transaction(
        engine, "PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"
    )
