"""The hash chain over the evidence (storage.chain) and `python -m bot verify`: rows changed,
deleted, inserted and swapped behind the bot's back are found and named; an erasure leaves the
chain whole; two instances appending at once keep one chain. SQLite always; PostgreSQL when
TEST_DATABASE_URL is set (a database of its own, dropped afterwards)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.service import verify
from storage import backup, chain, migrate
from storage.chain_verify import CHANGED, INSERTED, REMOVED, REORDERED, walk
from storage.crypto import MasterKeys
from storage.db import create_engine, session_factory
from storage.dialect import AppendOnlyLifted
from storage.models import User
from storage.repositories import Repositories
from tests.engines import TEST_DATABASE_URL
from tests.kit import Harness
from tests.test_campaigns import subscriber

MASTER = MasterKeys(b"m" * 32)
SECRET = "chain-test-pseudonym-secret"
KEY = chain.chain_key(SECRET)
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ENGINES = ["sqlite"] + (["postgresql"] if TEST_DATABASE_URL else [])


async def _postgres_database(name: str, create: bool) -> str:
    import asyncpg

    assert TEST_DATABASE_URL is not None
    url = make_url(TEST_DATABASE_URL)
    admin = await asyncpg.connect(
        url.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if create:
            await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=ENGINES)
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'chain.db'}"
        return
    name = f"chain_{os.getpid()}"
    yield await _postgres_database(name, create=True)
    await _postgres_database(name, create=False)


@pytest.fixture
async def sessions(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(url)
    await migrate.upgrade(engine, MASTER)
    try:
        yield session_factory(engine, MASTER, KEY)
    finally:
        await engine.dispose()


async def _user(session: AsyncSession, user_id: int) -> None:
    session.add(User(id=user_id, language="en", created_at=T0))
    await session.flush()


async def _consent(
    repo: Repositories, user_id: int, granted: bool, minute: int, actor: int
) -> None:
    at = T0 + timedelta(minutes=minute)
    text_ = (f"t-{user_id}-{granted}", "en", "body")
    assert await repo.consents.record(
        user_id,
        "marketing",
        granted,
        at=at,
        policy_version="v1",
        source="bot",
        actor_id=actor,
        text=text_,
    )


async def populate(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Chain: 1 consent(7), 2 audit, 3 consent(8, by 7), 4 audit, 5 consent(7), 6 audit."""
    async with sessions() as session:
        repo = Repositories(session)
        await _user(session, 7)
        await _user(session, 8)
        await _consent(repo, 7, True, 1, 7)
        await repo.audit.add(at=T0, actor_id=100, action="view", subject="7", allowed=True)
        await _consent(repo, 8, True, 2, 7)  # 7 acts for 8 (a representative)
        await repo.audit.add(at=T0, actor_id=7, action="export", subject=None, allowed=False)
        await _consent(repo, 7, False, 3, 7)
        await repo.audit.add(at=T0, actor_id=100, action="view", subject="8", allowed=True)
        await session.commit()


async def check(sessions: async_sessionmaker[AsyncSession]):  # type: ignore[no-untyped-def]
    async with sessions() as session:
        connection = await session.connection()
        return await walk(connection, KEY)  # type: ignore[arg-type]


async def tamper(sessions: async_sessionmaker[AsyncSession], *statements: str) -> None:
    async with sessions() as session:
        async with AppendOnlyLifted(session, ("consent_events", "audit_log")):
            for statement in statements:
                await session.execute(text(statement))
        await session.commit()


async def test_a_whole_chain_verifies(sessions: async_sessionmaker[AsyncSession]) -> None:
    await populate(sessions)
    result = await check(sessions)
    assert (result.entries, result.erased, result.broken) == (6, 0, None)


async def test_a_changed_row_is_named(sessions: async_sessionmaker[AsyncSession]) -> None:
    await populate(sessions)
    await tamper(sessions, "UPDATE consent_events SET granted = NOT granted WHERE id = 3")
    broken = (await check(sessions)).broken
    assert broken is not None
    assert (broken.position, broken.kind, broken.source, broken.row_id) == (
        5,
        CHANGED,
        "consent_events",
        3,
    )


async def test_a_deleted_row_is_named(sessions: async_sessionmaker[AsyncSession]) -> None:
    await populate(sessions)
    await tamper(sessions, "DELETE FROM audit_log WHERE id = 2")
    broken = (await check(sessions)).broken
    assert broken is not None
    assert (broken.position, broken.kind, broken.source, broken.row_id) == (
        4,
        REMOVED,
        "audit_log",
        2,
    )


async def test_an_inserted_row_is_named(sessions: async_sessionmaker[AsyncSession]) -> None:
    await populate(sessions)
    await tamper(
        sessions,
        "INSERT INTO audit_log (id, at, actor_id, action, subject, allowed) "
        "VALUES (50, '2026-12-01 08:00:00', 100, 'view', '7', true)",
    )
    broken = (await check(sessions)).broken
    assert broken is not None
    assert (broken.position, broken.kind, broken.source, broken.row_id) == (
        7,
        INSERTED,
        "audit_log",
        50,
    )


async def test_two_swapped_rows_are_named(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Rows 1 and 3 of the audit log exchange their contents (their IDs, so their order)."""
    await populate(sessions)
    await tamper(
        sessions,
        "UPDATE audit_log SET id = 99 WHERE id = 1",
        "UPDATE audit_log SET id = 1 WHERE id = 3",
        "UPDATE audit_log SET id = 3 WHERE id = 99",
    )
    broken = (await check(sessions)).broken
    assert broken is not None
    assert (broken.position, broken.kind, broken.source, broken.row_id) == (
        2,
        REORDERED,
        "audit_log",
        1,
    )


async def test_a_changed_entry_is_named(sessions: async_sessionmaker[AsyncSession]) -> None:
    await populate(sessions)
    async with sessions() as session:
        await session.execute(
            text("UPDATE evidence_chain SET content_hmac = :h WHERE position = 3"), {"h": "0" * 64}
        )
        await session.commit()
    broken = (await check(sessions)).broken
    assert broken is not None and (broken.position, broken.kind) == (3, CHANGED)


async def test_an_erasure_leaves_the_chain_whole(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Erasing 7 deletes their events and the audit row they did, and rewrites the event they
    gave for 8 (actor 0) and the audit row about them (subject: the pseudonym)."""
    await populate(sessions)
    async with sessions() as session:
        await Repositories(session).erasure.erase(7, "p" * 64)
        await session.commit()
    result = await check(sessions)
    assert result.broken is None
    assert (result.entries, result.erased) == (6, 5)  # 3 erased, 2 rewritten; 8's view intact
    async with sessions() as session:  # an entry marked erased while its row is still there
        await session.execute(text("UPDATE evidence_chain SET mark_mac = 'x' WHERE position = 1"))
        await session.commit()
    broken = (await check(sessions)).broken
    assert broken is not None and (broken.position, broken.kind) == (1, REMOVED)


async def test_two_instances_appending_at_once_keep_one_chain(url: str) -> None:
    """Two engines (two instances) on one database, 40 audit rows each, at once."""
    engines = [create_engine(url) for _ in range(2)]
    await migrate.upgrade(engines[0], MASTER)
    try:
        factories = [session_factory(engine, MASTER, KEY) for engine in engines]

        async def writer(factory: async_sessionmaker[AsyncSession], actor: int) -> None:
            for n in range(40):
                async with factory() as session:
                    await Repositories(session).audit.add(
                        at=T0, actor_id=actor, action=f"a{n}", subject=None, allowed=True
                    )
                    await session.commit()

        await asyncio.gather(*(writer(f, i + 1) for i, f in enumerate(factories * 2)))
        result = await check(factories[1])
        assert (result.entries, result.broken) == (160, None)
    finally:
        for engine in engines:
            await engine.dispose()


async def test_rows_from_before_the_chain_are_chained_in_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await tamper(
        sessions,
        "INSERT INTO audit_log (id, at, actor_id, action, subject, allowed) "
        "VALUES (1, '2026-12-01 08:00:00', 100, 'view', '7', true)",
        "INSERT INTO audit_log (id, at, actor_id, action, subject, allowed) "
        "VALUES (2, '2026-12-01 07:00:00', 100, 'view', '8', true)",
    )
    assert (await check(sessions)).broken is not None
    async with sessions() as session:
        assert await chain.backfill(session) == 2
        await session.commit()
    result = await check(sessions)
    assert (result.entries, result.broken) == (2, None)


async def test_verify_command_exit_codes_and_lines(
    sessions: async_sessionmaker[AsyncSession],
    url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await populate(sessions)

    class Settings:
        database_url = url

        def chain_key(self) -> bytes:
            return KEY

    monkeypatch.setattr(verify, "load_settings", Settings)
    target = url.removeprefix("sqlite+aiosqlite:///")  # a backup file's path on SQLite
    assert await asyncio.to_thread(verify.main, ["--database-url", target]) == 0
    assert capsys.readouterr().out == (
        "Chain whole: 6 entries, 0 erased entries, last anchor: none\n"
    )
    await tamper(sessions, "DELETE FROM audit_log WHERE id = 2")
    assert await asyncio.to_thread(verify.main, []) == 1
    assert capsys.readouterr().out == (
        "Chain broken at entry 4: audit_log row 2 removed (6 entries)\n"
    )
    assert await asyncio.to_thread(verify.main, ["--database-url", "/no/such.db"]) == 2


async def test_verify_runs_on_a_backup_file(
    sessions: async_sessionmaker[AsyncSession],
    url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A backup made by `python -m bot backup` (no data keys) verifies, erasure marks and all;
    a row changed in the copy is found there."""
    if not url.startswith("sqlite"):
        pytest.skip("backup files are SQLite's (PostgreSQL: pg_dump)")
    await populate(sessions)
    async with sessions() as session:
        await Repositories(session).erasure.erase(8, "q" * 64)
        await session.commit()
    copy = tmp_path / "copy.db"
    await asyncio.to_thread(backup.backup, Path(url.removeprefix("sqlite+aiosqlite:///")), copy)

    class Settings:
        database_url = "sqlite+aiosqlite:////nowhere/live.db"

        def chain_key(self) -> bytes:
            return KEY

    monkeypatch.setattr(verify, "load_settings", Settings)
    assert await asyncio.to_thread(verify.main, ["--database-url", str(copy)]) == 0
    assert capsys.readouterr().out == (
        "Chain whole: 6 entries, 2 erased entries, last anchor: none\n"
    )
    with closing(sqlite3.connect(copy)) as connection:
        connection.execute("DROP TRIGGER audit_log_append_only")
        connection.execute("UPDATE audit_log SET allowed = 0 WHERE id = 1")
        connection.commit()
    assert await asyncio.to_thread(verify.main, ["--database-url", str(copy)]) == 1
    assert capsys.readouterr().out == (
        "Chain broken at entry 2: audit_log row 1 changed (6 entries)\n"
    )


async def test_the_bots_own_writes_are_chained(bot: Harness) -> None:
    """Consents given and withdrawn in the chat and a staff action: every row has its entry,
    under the key the settings derive from the pseudonym secret."""
    ann = await subscriber(bot, "Ann")
    await ann.send("/consents")
    await ann.tap("✅ Marketing messages")  # withdrawn
    dpo = bot.staff("Dana")
    await dpo.send(f"/role {bot.staff('Alex', status='member').id} agent")
    async with bot.app.sessions() as session:
        connection = await session.connection()
        result = await walk(connection, bot.settings.chain_key())  # type: ignore[arg-type]
        rows = await session.scalar(
            text("SELECT (SELECT count(*) FROM consent_events) + (SELECT count(*) FROM audit_log)")
        )
    assert result.broken is None and result.entries == rows >= 3
