"""Which database engine the suite runs on, and the servers it may use.

Plain `pytest` runs on SQLite (a file per test) and needs no server. With `TEST_DATABASE_URL`
(e.g. `postgresql+asyncpg://postgres@127.0.0.1:5432/test`) every test that runs the bot runs on
that PostgreSQL database instead, which is emptied before each test (schema `public` dropped and
recreated, so every test also runs the migrations from scratch). `TEST_REDIS_URL` enables the tests
that need Redis; they use the database number in the URL and flush it before each test.
"""

from __future__ import annotations

import asyncio
import os
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


async def _reset_postgresql(url: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
    try:
        # A bot process or engine a previous test left behind must not hold a lock on the schema.
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        await connection.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
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
