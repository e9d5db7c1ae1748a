"""Engine and session factory, on SQLite (the embedded default) or PostgreSQL (asyncpg).
What differs between the two lives in storage.dialect."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage import dialect
from storage.chain import CHAIN_KEY
from storage.crypto import MasterKeys
from storage.dialect import BUSY_TIMEOUT_MS
from storage.repositories import ERASED_TABLES, OUTBOX_LISTENERS
from storage.sealing import MASTER

__all__ = ["BUSY_TIMEOUT_MS", "checkpoint", "compact", "create_engine", "session_factory"]


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
    # hide_parameters: an error never carries the values of a statement (names, texts).
    engine = create_async_engine(url, hide_parameters=True, **dialect.engine_options(url))
    dialect.configure(engine)
    return engine


def read_only_engine(path: Path) -> AsyncEngine:
    """A SQLite file opened read-only, as it is (a backup being checked: not even its journal
    mode is changed)."""
    return create_async_engine(
        f"sqlite+aiosqlite:///file:{path.resolve()}?mode=ro&uri=true", hide_parameters=True
    )


def session_factory(
    engine: AsyncEngine, master: MasterKeys, chain_key: bytes | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions whose personal fields are sealed and opened with keys unwrapped by `master`;
    `chain_key` keys the evidence chain (storage.chain; needed to write evidence rows)."""
    info: dict[str, object] = {MASTER: master, OUTBOX_LISTENERS: []}
    if chain_key is not None:
        info[CHAIN_KEY] = chain_key
    return async_sessionmaker(engine, expire_on_commit=False, info=info)


async def checkpoint(engine: AsyncEngine) -> None:
    """Fold the WAL into the database file and empty it."""
    await dialect.checkpoint(engine)


async def scrub(engine: AsyncEngine) -> None:
    """After an erasure: no deleted bytes stay readable, without rewriting the whole file
    (storage.dialect.scrub). Raises OperationalError while the database is busy, so the caller
    retries later."""
    await dialect.scrub(engine, ERASED_TABLES)


async def compact(engine: AsyncEngine) -> None:
    """Leave no deleted bytes of erased people in the database files (storage.dialect.compact)."""
    await dialect.compact(engine, ERASED_TABLES)
