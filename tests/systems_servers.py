"""The operator databases the sql-system tests run against: SQLite always; PostgreSQL and
MariaDB when reachable (skipped with the reason otherwise, so plain `pytest` on a fresh machine
needs no server). `TEST_SYSTEMS_POSTGRESQL_URL` and `TEST_MARIADB_URL` name the servers (each an
SQLAlchemy async URL of an existing database the tests connect through); set, an unreachable
server fails the tests instead of skipping them. Each run works in a database of its own on each
server (`sqlsys_<pid>`, dropped at the end), emptied before each test: never the bot's `test`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import warnings
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy.engine import URL, make_url

POSTGRESQL_URL = os.environ.get("TEST_SYSTEMS_POSTGRESQL_URL") or None
MARIADB_URL = os.environ.get("TEST_MARIADB_URL") or None
_DEFAULTS = {
    "postgresql": "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
    "mariadb": "mysql+asyncmy://root@127.0.0.1:3306/test",
}
_GIVEN = {"postgresql": POSTGRESQL_URL, "mariadb": MARIADB_URL}
ENGINES = ("sqlite", "postgresql", "mariadb")
DATABASE = f"sqlsys_{os.getpid()}"

_reachable: dict[str, str | None] = {}  # engine -> None when usable, else why not
_created: set[str] = set()
_FRESH = [f"DROP DATABASE IF EXISTS {DATABASE}", f"CREATE DATABASE {DATABASE}"]


def server_url(kind: str) -> URL:
    return make_url(_GIVEN[kind] or _DEFAULTS[kind])


def _admin(kind: str) -> dict[str, object]:
    url = server_url(kind)
    return {
        "host": url.host or "127.0.0.1",
        "port": url.port or (5432 if kind == "postgresql" else 3306),
        "user": url.username or ("postgres" if kind == "postgresql" else "root"),
        "password": url.password or ("" if kind == "mariadb" else None),
        "database": url.database,
    }


async def _admin_sql(kind: str, statements: list[str], database: str | None = None) -> None:
    params = _admin(kind)
    if kind == "postgresql":
        import asyncpg

        connection = await asyncpg.connect(
            host=params["host"],
            port=params["port"],
            user=params["user"],
            password=params["password"],
            database=database or params["database"],
            timeout=3,
        )
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()
        return
    import asyncmy

    connection = await asyncmy.connect(
        host=params["host"],
        port=params["port"],
        user=params["user"],
        password=params["password"],
        database=database or params["database"],
        connect_timeout=3,
        autocommit=True,
    )
    try:
        async with connection.cursor() as cursor:
            for statement in statements:
                with warnings.catch_warnings():  # "IF EXISTS" notes from the server
                    warnings.simplefilter("ignore")
                    await cursor.execute(statement)
    finally:
        connection.close()


def _in_thread(coroutine: object) -> None:
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()  # type: ignore[arg-type]


def require(kind: str) -> None:
    """Skip (or, when the server was named, fail) unless `kind` is usable."""
    if kind == "sqlite":
        return
    if kind not in _reachable:
        try:
            _in_thread(
                _admin_sql(
                    kind, [f"DROP DATABASE IF EXISTS {DATABASE}", f"CREATE DATABASE {DATABASE}"]
                )
            )
            _created.add(kind)
            _reachable[kind] = None
        except Exception as error:  # any failure to reach the server
            _reachable[kind] = (
                f"{kind} not reachable at {server_url(kind).host}: {type(error).__name__}"
            )
    why = _reachable[kind]
    if why is not None:
        if _GIVEN[kind]:
            pytest.fail(why)
        pytest.skip(why)


def database_url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'operator.db'}"
    return server_url(kind).set(database=DATABASE).render_as_string(hide_password=False)


async def empty(kind: str) -> None:
    """Drop every table of the test's own database."""
    if kind == "postgresql":
        await _admin_sql(
            kind, ["DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public"], DATABASE
        )
    elif kind == "mariadb":
        await _admin_sql(
            kind, [f"DROP DATABASE IF EXISTS {DATABASE}", f"CREATE DATABASE {DATABASE}"]
        )


def drop_databases() -> None:
    for kind in sorted(_created):
        with contextlib.suppress(Exception):
            _in_thread(_admin_sql(kind, [f"DROP DATABASE IF EXISTS {DATABASE}"]))
        _reachable.pop(kind, None)
    _created.clear()


class Proxy:
    """A TCP forwarder on 127.0.0.1 to a database server, stopped and started again on the same
    port: the database "down", then back."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


@contextlib.asynccontextmanager
async def proxied(kind: str, tmp_path: Path) -> AsyncIterator[tuple[Proxy, str]]:
    """A proxy to the server of `kind`, and the test database's URL through it."""
    url = make_url(database_url(kind, tmp_path))
    proxy = Proxy(url.host or "127.0.0.1", url.port or (5432 if kind == "postgresql" else 3306))
    await proxy.start()
    try:
        yield proxy, url.set(port=proxy.port).render_as_string(hide_password=False)
    finally:
        if proxy._server is not None:
            await proxy.stop()
