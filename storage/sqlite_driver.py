"""The SQLite driver as the bot uses it: aiosqlite with one worker-thread round trip per statement,
no round trip for a commit or rollback with nothing to end, and write transactions that begin
IMMEDIATE.

SQLAlchemy's stock aiosqlite adapter hops to aiosqlite's worker thread four times per statement
(create a cursor, execute, fetch, close) and once for every commit and every rollback, also when
the connection has no open transaction. Each hop is a queue put, a thread wake-up and a loop
wake-up; on the common path they were most of the database cost. Here a statement is executed,
fetched and closed in one call inside the worker thread.

Transactions: pysqlite's default (legacy) transaction control runs reads outside any transaction
and opens one implicitly before the first INSERT, UPDATE or DELETE. With `isolation_level =
"IMMEDIATE"` that implicit BEGIN is `BEGIN IMMEDIATE`: a writer takes the write lock when it
starts instead of upgrading a read lock later (an upgrade that fails with SQLITE_BUSY at once,
without waiting for the busy timeout). Read-only work never opens a transaction, so it neither
commits nor rolls back. SQLAlchemy sets `isolation_level = ""` when it restores a connection's
default after an AUTOCOMMIT use; that is mapped back to IMMEDIATE here.

Only used for `sqlite+aiosqlite` URLs (see `storage.db.create_engine`).
"""

from __future__ import annotations

import sqlite3
from collections import deque
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

WRITE_BEGIN = "IMMEDIATE"

# What one trip to the worker thread brings back: description, rows, rowcount, lastrowid.
Fetched = tuple[Any, list[Any], int, int | None]


def _run(connection: sqlite3.Connection, sql: str, parameters: Any, many: bool) -> Fetched:
    """Runs in aiosqlite's worker thread: execute, fetch everything, close."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        elif parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered DBAPI cursor whose execute is one trip to the worker thread."""

    __slots__ = ("_description", "_lastrowid", "_rowcount", "_size")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._size = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._size

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._size = value

    async def _async_soft_close(self) -> None:
        return None  # nothing is open: the worker closed the cursor already

    def close(self) -> None:
        self._rows.clear()

    async def _trip(self, operation: Any, parameters: Any, many: bool) -> None:
        async with self._adapt_connection._execute_mutex:
            driver: aiosqlite.Connection = self._connection  # type: ignore[assignment]
            fetched: Fetched = await driver._execute(
                _run, driver._conn, operation, parameters, many
            )
        self._description, rows, self._rowcount, self._lastrowid = fetched
        self._rows = deque(rows)

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            return await_(self._trip(operation, parameters, False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            return await_(self._trip(operation, seq_of_parameters, True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)


class LeanConnection(AsyncAdapt_aiosqlite_connection):
    """Skips commit and rollback when SQLite has no transaction open; writes begin IMMEDIATE."""

    __slots__ = ()
    _cursor_cls = OneTripCursor

    def _idle(self) -> bool:
        raw: sqlite3.Connection | None = self._connection._connection  # type: ignore[attr-defined]
        return raw is None or not raw.in_transaction

    def commit(self) -> None:
        if not self._idle():
            super().commit()

    def rollback(self) -> None:
        if not self._idle():
            super().rollback()

    @property
    def isolation_level(self) -> str | None:
        return super().isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        setter = AsyncAdapt_aiosqlite_connection.isolation_level.fset
        assert setter is not None
        setter(self, WRITE_BEGIN if value == "" else value)


class LeanAiosqlite(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module handed to SQLAlchemy (`create_async_engine(module=...)`)."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> LeanConnection:
        kw.setdefault("isolation_level", WRITE_BEGIN)
        stock = super().connect(*arg, **kw)
        return LeanConnection(self, stock._connection)
