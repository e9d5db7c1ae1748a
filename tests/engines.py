"""Which database engine the suite runs on, and the servers it may use.

Plain `pytest` runs on SQLite (a file per test) and needs no server. With `TEST_DATABASE_URL`
(e.g. `postgresql+asyncpg://postgres@127.0.0.1:5432/test`) every test that runs the bot runs on
that PostgreSQL database instead: its schema `public` is dropped and recreated once (the first
test migrates from scratch), and every table is emptied before each test. `TEST_REDIS_URL`
enables the tests that need Redis; its database is flushed before each test.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or None
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL") or None
ON_POSTGRESQL = TEST_DATABASE_URL is not None


def database_url(tmp_path: Path) -> str:
    """The URL a test's bot uses: the PostgreSQL test database, or an SQLite file of its own."""
    return TEST_DATABASE_URL or f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


_schema_fresh = False
# A session-level advisory lock (one bigint key; the bot's locks use two int keys) that one test
# run holds on its database from start to end.
_RUN_LOCK = 0x7072697661637921


class _RunGuard:
    """One test run per database. The resets end every other connection to the database and
    empty its tables, so a second run on it (another checkout, a test started by hand meanwhile)
    would break this one's tests at random: it is refused at start instead. The lock lives on a
    connection of its own, in a thread with its own event loop (the tests' loops come and go);
    the server releases it when this process ends."""

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="test-run-guard", daemon=True).start()
        self.pid: int = asyncio.run_coroutine_threadsafe(self._lock(url), self._loop).result(30)

    async def _lock(self, url: str) -> int:
        import asyncpg

        self._connection = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
        if not await self._connection.fetchval("SELECT pg_try_advisory_lock($1)", _RUN_LOCK):
            await self._connection.close()
            raise RuntimeError(
                f"another test run is using database {make_url(url).database!r}; "
                "give each run a database of its own"
            )
        return int(await self._connection.fetchval("SELECT pg_backend_pid()"))


_guard: _RunGuard | None = None


async def _reset_postgresql(url: str) -> None:
    """First time: drop and recreate schema `public` (the first bot migrates from scratch). Then
    before each test: empty every table and restart the sequences, which is much faster than
    migrating again (the schema is the same)."""
    import asyncpg

    global _schema_fresh
    assert _guard is not None
    connection = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
    try:
        # A test's bot stops and disposes of its engines before the next test, so normally there
        # is nothing to end here; a crashed bot process or leaked connection must not hold a lock.
        # The run's own guard connection (see _RunGuard) stays.
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> $1",
            _guard.pid,
        )
        if not _schema_fresh:
            await connection.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
            _schema_fresh = True
            return
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
        statements = [f'DELETE FROM "{row[0]}"' for row in tables]
        async with connection.transaction():
            # Foreign keys are not checked in replica mode (superuser), so order does not matter.
            await connection.execute("SET LOCAL session_replication_role = replica")
            await connection.execute(";".join(statements) or "SELECT 1")
            await connection.execute(
                "SELECT setval(c.oid, 1, false) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'S' AND n.nspname = 'public'"
            )
    finally:
        await connection.close()


async def _reset_redis(url: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


def reset_servers() -> None:
    """Empty the test database and the test Redis database (before each test)."""

    global _guard
    if TEST_DATABASE_URL is not None and _guard is None:
        _guard = _RunGuard(TEST_DATABASE_URL)

    async def reset() -> None:
        if TEST_DATABASE_URL is not None:
            await _reset_postgresql(TEST_DATABASE_URL)
        if TEST_REDIS_URL is not None:
            await _reset_redis(TEST_REDIS_URL)

    # In a thread of its own: the test's event loop is never touched.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, reset()).result()


def check_servers() -> list[str]:
    """Problems reaching the configured servers (none when nothing is configured)."""
    problems: list[str] = []
    try:
        reset_servers()
    except Exception as error:  # any failure to reach or reset a server is reported
        problems.append(f"{type(error).__name__}: {error}")
    return problems


async def stored_files(engine: AsyncEngine, sqlite_file: Path) -> dict[str, bytes]:
    """Every file the database keeps its tables in, by name: for SQLite the database file, its
    WAL and shared memory; for PostgreSQL every file of the database's directory (tables,
    indexes, TOAST, catalogs) after a CHECKPOINT wrote the shared buffers out (superuser)."""
    if engine.dialect.name == "sqlite":
        paths = [sqlite_file.with_name(sqlite_file.name + end) for end in ("", "-wal", "-shm")]
        return {path.name: path.read_bytes() for path in paths if path.exists()}
    async with engine.connect() as connection:
        raw = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await raw.exec_driver_sql("CHECKPOINT")
        folder = "base/" + str(
            await raw.scalar(text("SELECT oid FROM pg_database WHERE datname = current_database()"))
        )
        names = (await raw.scalars(text("SELECT pg_ls_dir(:folder)"), {"folder": folder})).all()
        files = {}
        for name in names:
            content = await raw.scalar(
                text("SELECT pg_read_binary_file(CAST(:path AS text), 0, 268435456, true)"),
                {"path": f"{folder}/{name}"},
            )
            if content:
                files[name] = bytes(content)
        return files
