"""Opening an engine on an operator's database, and everything that differs between its
engines, in one place: the read-only transaction (PostgreSQL `SET TRANSACTION READ ONLY`,
MariaDB/MySQL `START TRANSACTION READ ONLY`, SQLite `PRAGMA query_only`), the write
transaction (SQLite takes its write lock first: `BEGIN IMMEDIATE`), connect timeouts, and an
error described without the URL, credentials or any value.

MariaDB and MySQL are reached through asyncmy (`mysql+asyncmy://` or `mariadb+asyncmy://`):
the asyncio driver SQLAlchemy's MySQL/MariaDB dialect documents first (aiomysql it calls its
"second" asyncio dialect); README, "Your systems".
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

CONNECT_TIMEOUT = 10  # seconds to reach the server before a job fails (and is retried later)

SQLITE, POSTGRESQL, MYSQL = "sqlite", "postgresql", "mysql"  # dialect names (MariaDB: mysql)


def open_engine(url: str) -> AsyncEngine:
    """An engine on the operator's database from its SQLAlchemy async URL. Statements' values
    never appear in an error (hide_parameters); a connection that died while idle (the server
    restarted) is replaced before use (pool_pre_ping)."""
    parsed = make_url(url)
    options: dict[str, Any] = {"hide_parameters": True, "pool_pre_ping": True}
    backend = parsed.get_backend_name()
    if backend == POSTGRESQL:
        options["connect_args"] = {"timeout": CONNECT_TIMEOUT}
    elif backend in (MYSQL, "mariadb"):
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    return create_async_engine(parsed, **options)


def engine_kind(target: AsyncConnection | AsyncEngine) -> str:
    return target.dialect.name


@asynccontextmanager
async def read_only(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a read-only transaction: a write inside fails. Rolled back at the end
    (nothing to keep)."""
    async with engine.connect() as connection:
        kind = engine_kind(connection)
        if kind == SQLITE:
            await connection.exec_driver_sql("PRAGMA query_only = ON")
            try:
                yield connection
            finally:
                await connection.rollback()
                await connection.exec_driver_sql("PRAGMA query_only = OFF")
                await connection.commit()
            return
        async with connection.begin() as transaction:
            if kind == POSTGRESQL:
                await connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            elif kind == MYSQL:
                await connection.exec_driver_sql("START TRANSACTION READ ONLY")
            yield connection
            await transaction.rollback()


@asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in one write transaction: committed when the block ends, rolled back
    whole when it raises."""
    async with engine.connect() as connection, connection.begin():
        if engine_kind(connection) == SQLITE:
            # pysqlite would begin only at the first write: take the lock before the reads
            # that decide what to write, so the whole job is one transaction.
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
        yield connection


_CAUSES: tuple[tuple[type[BaseException], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    (ConnectionResetError, "connection reset"),
    (socket.gaierror, "host not found"),
    (TimeoutError, "timed out"),
    (asyncio.TimeoutError, "timed out"),
    (PermissionError, "permission denied"),
    (FileNotFoundError, "file not found"),
    (OSError, "network or file error"),
)


def describe_error(error: BaseException) -> str:
    """The error's class, and what kind of failure it was where that is known, e.g.
    "OperationalError: connection refused". Never its message: a driver's message may carry
    the host, the user, a file path or a value of a row."""
    name = type(error).__name__
    chain = _causes(error)
    for cause_type, words in _CAUSES:
        if any(isinstance(cause, cause_type) for cause in chain):
            return f"{name}: {words}"
    if isinstance(error, DBAPIError) and error.orig is not None:
        cause = type(error.orig).__name__
        return name if cause == name else f"{name}: {cause}"
    return name


def _causes(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(found) < 10:
        found.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) and orig is not current else None
        if current is None:
            current = found[-1].__cause__ or found[-1].__context__
    return found
