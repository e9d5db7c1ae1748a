"""Everything that differs between SQLite and PostgreSQL, in one place.

The rest of `storage/` writes portable SQLAlchemy and asks this module for the few things the
engines do differently: upserts, the append-only triggers, claiming work, and rewriting tables
after an erasure. Nothing outside this module checks which engine it runs on.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from enum import IntEnum
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from storage.sqlite_driver import LeanAiosqlite

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

# PostgreSQL: every append-only table shares one trigger function. An erasure may rewrite the
# ledger (it replaces the ID of a person who acted for someone else) by setting this variable for
# its own transaction only (SET LOCAL): no DDL, so no table lock that would stall other instances.
_ERASURE_FLAG = "privacy_desk.erasure"
_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('{_ERASURE_FLAG}', true), '') = 'on' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$
"""

Target = AsyncSession | AsyncConnection | AsyncEngine | Connection
T = TypeVar("T")


def dialect_of(target: Target) -> Dialect:
    if isinstance(target, AsyncSession):
        return target.get_bind().dialect
    return target.dialect


def is_sqlite(target: Target) -> bool:
    return dialect_of(target).name == SQLITE


class PerEngine(Generic[T]):
    """A statement the engines spell differently (an upsert), built once per engine on first
    use with bind parameters: `statement(session)`."""

    def __init__(self, build: Callable[[Target], T]) -> None:
        self._build = build
        self._built: dict[str, T] = {}

    def __call__(self, target: Target) -> T:
        name = dialect_of(target).name
        built = self._built.get(name)
        if built is None:
            built = self._built[name] = self._build(target)
        return built


def insert(target: Target, model: Any) -> Any:
    """An INSERT with `on_conflict_do_update` / `on_conflict_do_nothing` for this engine (both
    engines spell them the same way)."""
    module = sqlite if is_sqlite(target) else postgresql
    return module.insert(model)


def claimable(query: Select[Any]) -> Select[Any]:
    """Rows a worker is about to claim. PostgreSQL locks them and skips rows another instance
    holds (FOR UPDATE SKIP LOCKED); SQLite has one writer at a time and omits the clause, so the
    claim is the conditional UPDATE that follows (compare-and-set, checked by its rowcount)."""
    return query.with_for_update(skip_locked=True)


class Space(IntEnum):
    """Namespaces of the work that only one instance may do at a time (the numbers are the
    advisory locks' first key on PostgreSQL: never reuse one; 1 was the outbox lanes', which
    the claim no longer needs)."""

    CAMPAIGN = 2
    ERASURE = 3
    COMPACTION = 4
    STATE = 5  # the first claim of a bot_state key (storage.repositories.BotStateRepository)
    CHAIN = 6  # appending to the evidence chain (storage.chain)


async def lock_for_transaction(session: AsyncSession, space: Space, key: str) -> None:
    """Serialise this transaction with any other taking the same (space, key) until it ends.
    PostgreSQL: a transaction-level advisory lock. SQLite: writers are serialised already."""
    if not is_sqlite(session):
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))"),
            {"space": int(space), "key": key},
        )


async def try_lock_for_transaction(session: AsyncSession, space: Space, key: str) -> bool:
    """Take (space, key) until this transaction ends, without waiting: False when another
    transaction holds it. PostgreSQL: a transaction-level advisory lock. SQLite: writers are
    serialised already, always True."""
    if is_sqlite(session):
        return True
    return bool(
        await session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:space, hashtext(:key))"),
            {"space": int(space), "key": key},
        )
    )


@asynccontextmanager
async def exclusive(engine: AsyncEngine, space: Space, key: str) -> AsyncIterator[bool]:
    """`async with exclusive(engine, space, key) as mine:` tells whether this instance holds
    (space, key) until the block ends; False when another instance does. PostgreSQL: a
    session-level advisory lock on a connection of its own, released by the server when the
    process dies. SQLite: an exclusive `flock` on a file beside the database, held by an open
    file (so also between two instances in one process) and released by the kernel when the
    process dies."""
    if engine.dialect.name == SQLITE:
        async with _file_lock(engine, space, key) as mine:
            yield mine
        return
    params = {"space": int(space), "key": key}
    async with engine.connect() as connection:
        raw = await connection.execution_options(isolation_level="AUTOCOMMIT")
        mine = bool(
            await raw.scalar(text("SELECT pg_try_advisory_lock(:space, hashtext(:key))"), params)
        )
        try:
            yield mine
        finally:
            if mine:
                await raw.execute(text("SELECT pg_advisory_unlock(:space, hashtext(:key))"), params)


@asynccontextmanager
async def _file_lock(engine: AsyncEngine, space: Space, key: str) -> AsyncIterator[bool]:
    """SQLite's `exclusive`: the lock file is named by a hash (no ID on disk) and removed by
    its holder; a lock taken on a file its holder removed meanwhile is not ours."""
    database = Path(engine.url.database or "")
    folder = database.with_name(database.name + ".locks")
    folder.mkdir(mode=0o700, exist_ok=True)
    name = hashlib.sha256(f"{int(space)}:{key}".encode()).hexdigest()[:32]
    path = folder / name
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            mine = False
        else:
            try:
                mine = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                mine = False
        try:
            yield mine
        finally:
            if mine:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
    finally:
        os.close(fd)  # releases the lock


# --- the append-only ledger ----------------------------------------------------------------


def _name(target: Target | str) -> str:
    return target if isinstance(target, str) else dialect_of(target).name


def append_only_ddl(target: Target | str, tables: Iterable[str]) -> list[str]:
    """Statements that make `tables` refuse UPDATE on `target`'s engine (the migrations pass
    their connection)."""
    if _name(target) == SQLITE:
        return [
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            for table in tables
        ]
    return [_PG_FUNCTION] + [
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION refuse_update()"
        for table in tables
    ]


def drop_append_only_ddl(target: Target | str, tables: Iterable[str]) -> list[str]:
    if _name(target) == SQLITE:
        return [f"DROP TRIGGER IF EXISTS {table}_append_only" for table in tables]
    return [f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}" for table in tables] + [
        "DROP FUNCTION IF EXISTS refuse_update()"
    ]


class AppendOnlyLifted:
    """`async with AppendOnlyLifted(session, tables):` lets this transaction (and only it) update
    the append-only tables. SQLite drops the triggers and recreates them before leaving (DDL is
    transactional there); PostgreSQL sets a transaction-local flag the trigger function reads."""

    def __init__(self, session: AsyncSession, tables: Sequence[str]) -> None:
        self._session = session
        self._tables = tables
        self._name = dialect_of(session).name

    async def __aenter__(self) -> None:
        if self._name == SQLITE:
            for table in self._tables:
                await self._session.execute(text(f"DROP TRIGGER IF EXISTS {table}_append_only"))
        else:
            await self._session.execute(
                text("SELECT set_config(:name, 'on', true)"), {"name": _ERASURE_FLAG}
            )

    async def __aexit__(self, *exc: object) -> None:
        if self._name == SQLITE:
            for statement in append_only_ddl(SQLITE, self._tables):
                await self._session.execute(text(statement))
        else:
            await self._session.execute(
                text("SELECT set_config(:name, 'off', true)"), {"name": _ERASURE_FLAG}
            )


# --- migrations ----------------------------------------------------------------------------


@asynccontextmanager
async def migrating(connection: AsyncConnection) -> AsyncIterator[None]:
    """Around a schema upgrade on `connection`, which the block commits. SQLite rebuilds a table
    to alter it, and dropping the old copy with foreign keys on would cascade into every child
    row: they are off for the block (SQLite's documented procedure: the pragma is set outside a
    transaction) and on again after it. PostgreSQL alters tables in place: nothing to do."""
    if not is_sqlite(connection):
        yield
        return
    await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        if connection.in_transaction():
            await connection.rollback()
        await connection.exec_driver_sql("PRAGMA foreign_keys=ON")


async def broken_references(connection: AsyncConnection) -> int:
    """Rows whose foreign key points nowhere, checked inside `migrating` before the commit
    (SQLite, where the migration ran with foreign keys off); PostgreSQL never had them off."""
    if not is_sqlite(connection):
        return 0
    return len((await connection.exec_driver_sql("PRAGMA foreign_key_check")).all())


def enforces_lengths(bind: Target) -> bool:
    """Whether VARCHAR(n) refuses longer values: PostgreSQL does, SQLite stores any length."""
    return not is_sqlite(bind)


def add_columns_never_reusing_ids(op: Any, table: str, columns: Sequence[Any]) -> None:
    """Add `columns` to `table` (in a migration; `op` is Alembic's) and make sure an ID of a
    deleted row is never handed out again. PostgreSQL: a sequence never hands out a number
    twice, the columns are added. SQLite hands out the highest ID again after its row is
    deleted unless the table is AUTOINCREMENT: the table is rebuilt so (with foreign keys off,
    see `migrating`) and the columns added."""
    if not is_sqlite(op.get_bind()):
        for column in columns:
            op.add_column(table, column)
        return
    with op.batch_alter_table(
        table, schema=None, recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        for column in columns:
            batch_op.add_column(column)


def keep_ids_above(bind: Connection, table: str, floor: int) -> None:
    """IDs of `table` (made by `add_columns_never_reusing_ids`) are handed out above `floor`
    from now on (numbers used by rows deleted before stay taken). SQLite: its AUTOINCREMENT
    counter is raised to `floor`. PostgreSQL: the sequence is past every number it handed
    out, nothing to do."""
    if not is_sqlite(bind):
        return
    bind.execute(
        text(
            "INSERT INTO sqlite_sequence (name, seq) SELECT :table, 0 "
            "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = :table)"
        ),
        {"table": table},
    )
    bind.execute(
        text("UPDATE sqlite_sequence SET seq = MAX(seq, :floor) WHERE name = :table"),
        {"table": table, "floor": floor},
    )


async def outside_transaction(engine: AsyncEngine, *statements: str) -> bool:
    """Run SQLite PRAGMAs (WAL checkpoints, VACUUM) outside a transaction; False when a
    checkpoint could not complete (a reader still needed the WAL). PostgreSQL has no such
    statements: nothing runs, True."""
    if engine.dialect.name != SQLITE:
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


# --- files on disk after an erasure --------------------------------------------------------


async def _autocommit(
    engine: AsyncEngine, statements: Iterable[str], *, finally_: str | None = None
) -> None:
    async with engine.connect() as connection:
        raw = await connection.execution_options(isolation_level="AUTOCOMMIT")
        try:
            for statement in statements:
                await raw.exec_driver_sql(statement)
        finally:
            if finally_ is not None:
                await raw.exec_driver_sql(finally_)


async def checkpoint(engine: AsyncEngine) -> None:
    """SQLite: fold the WAL into the database file and empty it. PostgreSQL manages its own WAL."""
    if engine.dialect.name == SQLITE:
        await _autocommit(engine, ["PRAGMA wal_checkpoint(TRUNCATE)"])


async def transaction_mark(session: AsyncSession) -> str:
    """Identifies the current (erasing) transaction, for `horizon_passed` later. PostgreSQL: its
    64-bit transaction ID (xid8: epoch and xid, so it never wraps around). SQLite: "1"."""
    if is_sqlite(session):
        return "1"
    return str(await session.scalar(text("SELECT pg_current_xact_id()::text")))


def later_mark(mark: str | None, other: str) -> str:
    """The later of two marks (both engines' marks are counters): a compaction that waits for
    it waits for both transactions."""
    return other if mark is None or int(other) >= int(mark) else mark


_XID_SPAN = 2**32


def _widen(xid: int, near: int) -> int:
    """The 64-bit ID of a 32-bit transaction ID (pg_stat_activity, pg_replication_slots show no
    epoch) that lies within 2^31 of the 64-bit ID `near`, as PostgreSQL keeps every running
    transaction's (it stops assigning IDs before an older one would wrap around)."""
    ahead = (xid - near) % _XID_SPAN
    return near + (ahead - _XID_SPAN if ahead >= _XID_SPAN // 2 else ahead)


# Step 1: the oldest transaction ID still running anywhere in the cluster (a writer in another
# database, or a prepared transaction, older than the erasure holds the horizon back too: the
# snapshot VACUUM FULL takes for itself starts at it), and a 64-bit reference for step 2.
_RUNNING = text(
    "SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmax(s)::text FROM pg_current_snapshot() s"
)
# Step 2, read after step 1 (a snapshot taken after step 1 cannot start before the erasure
# unless step 1 saw an older transaction running): the oldest snapshots that other backends of
# this database hold (a REPEATABLE READ report, a pg_dump, an idle transaction; backends of no
# database too: a walsender's hot-standby feedback counts for every database), physical
# replication slots' xmin, and vacuum_defer_cleanup_age (PostgreSQL 15 and older).
_SNAPSHOTS = text(
    "SELECT ARRAY("
    " SELECT backend_xmin::text FROM pg_stat_activity"
    " WHERE backend_xmin IS NOT NULL AND pid <> pg_backend_pid()"
    " AND (datname = current_database() OR datname IS NULL)"
    " UNION ALL SELECT xmin::text FROM pg_replication_slots WHERE xmin IS NOT NULL"
    "), coalesce(current_setting('vacuum_defer_cleanup_age', true), '0')"
)


async def horizon_passed(engine: AsyncEngine, mark: str) -> bool:
    """Whether the rows deleted by the transaction marked `mark` can no longer be seen by anyone.

    Until then PostgreSQL keeps them for the transactions that could (even VACUUM FULL copies
    such "recently dead" rows), so a compaction would leave the data in place. VACUUM removes a
    row deleted by transaction X once X precedes its horizon: the oldest of every transaction ID
    still running in the cluster (its own snapshot starts there), every snapshot held in this
    database, and replication slots' xmin. This reads the same sources (pg_stat_activity, no
    privilege needed), except its own connection's. It never waits: the caller retries later.
    Not covered: logical slots' catalog_xmin (it holds back catalogs only). SQLite: always."""
    if engine.dialect.name == SQLITE:
        return True
    async with engine.connect() as connection:
        oldest, reference = (await connection.execute(_RUNNING)).one()
        xmins, deferred = (await connection.execute(_SNAPSHOTS)).one()
    horizon = min([int(oldest), *(_widen(int(xmin), int(reference)) for xmin in xmins)])
    return horizon - int(deferred) > int(mark)


# PostgreSQL: how long a compaction waits for a table lock before it gives up (and is retried
# by the scheduler) rather than queueing every instance's updates behind it.
COMPACT_LOCK_TIMEOUT = "2s"


async def scrub(engine: AsyncEngine, tables: Sequence[str]) -> None:
    """After an erasure: no deleted bytes stay readable.

    SQLite, without rewriting the whole file: `secure_delete` zeroes deleted content in the
    pages as they are written; the old page images live on only in the WAL, which is folded
    into the file and truncated here. This touches only the pages the WAL holds (a VACUUM
    rewrote the whole file and held the database for seconds at a million users). Raises
    OperationalError while a reader still needs the WAL. PostgreSQL: `compact` (the tables are
    rewritten)."""
    if engine.dialect.name != SQLITE:
        await compact(engine, tables)
        return
    if not await outside_transaction(engine, "PRAGMA wal_checkpoint(TRUNCATE)"):
        raise OperationalError("PRAGMA wal_checkpoint(TRUNCATE)", {}, Exception("WAL busy"))


async def compact(engine: AsyncEngine, tables: Sequence[str]) -> None:
    """Leave no deleted bytes behind in the database files.

    SQLite: fold the WAL into the file, rebuild the file (secure_delete has already zeroed freed
    pages), empty the WAL. PostgreSQL: a plain VACUUM only marks dead tuples reusable, their
    bytes stay in the pages, so `tables` are rewritten with VACUUM FULL (new files; the old ones
    are truncated at commit). It takes a short exclusive lock per table and gives up after
    COMPACT_LOCK_TIMEOUT, raising an OperationalError the caller retries later.
    """
    if engine.dialect.name == SQLITE:
        await _autocommit(
            engine,
            ["PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"],
        )
        return
    await _autocommit(
        engine,
        [
            f"SET lock_timeout = '{COMPACT_LOCK_TIMEOUT}'",
            *(f"VACUUM (FULL, ANALYZE) {table}" for table in tables),
        ],
        finally_="RESET lock_timeout",
    )


# --- connections ---------------------------------------------------------------------------

BUSY_TIMEOUT_MS = 5000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Deleted content is overwritten with zeros, so an erasure leaves nothing in free pages.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


# Each update holds one connection and the FSM storage briefly takes a second one, so a pool
# must hold twice the updates allowed at once (MAX_CONCURRENT_UPDATES in
# bot.telegram.middlewares) plus the workers (outbox, campaigns, reminders). PostgreSQL
# serves every instance from one max_connections (100 by default), so each instance keeps
# fewer connections open there.
POOL = {
    SQLITE: {"pool_size": 24, "max_overflow": 8},
    POSTGRESQL: {"pool_size": 20, "max_overflow": 4},
}


def engine_options(url: str) -> dict[str, Any]:
    """Arguments for create_async_engine on this URL's engine."""
    name = SQLITE if url.startswith(SQLITE) else POSTGRESQL
    options: dict[str, Any] = dict(POOL[name])
    if make_url(url).drivername == "sqlite+aiosqlite":
        options["module"] = LeanAiosqlite()  # one thread trip per statement, BEGIN IMMEDIATE
    return options


def configure(engine: AsyncEngine) -> None:
    """Per-connection settings: SQLite in WAL mode, busy timeout, foreign keys, secure delete."""
    if engine.dialect.name == SQLITE:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
