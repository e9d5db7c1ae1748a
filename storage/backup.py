"""Backups of the SQLite database that carry the data but never the data keys, and restores
that take the keys from the live database. So a backup made before an erasure cannot be read
for the erased person: their key is gone from the only place keys are kept. (PostgreSQL:
pg_dump, see the README.)"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from storage.db import BUSY_TIMEOUT_MS

KEYS = "data_keys"


class NoKeys(Exception):
    """The live database has no data keys: restoring would leave every person unreadable."""


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA secure_delete=ON")
    return connection


def _finish(connection: sqlite3.Connection, journal: str) -> None:
    """Rewrite the file so no deleted bytes (keys, erased rows) linger in free pages."""
    connection.execute("PRAGMA journal_mode=DELETE")
    connection.execute("VACUUM")
    connection.execute(f"PRAGMA journal_mode={journal}")


def backup(live: Path, target: Path) -> int:
    """A consistent copy of `live` (SQLite's online backup: the bot may keep running) without
    the data keys. Returns the number of people whose fields the copy holds sealed."""
    if target.exists():
        raise FileExistsError(f"{target} already exists")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    with closing(_connect(live)) as source, closing(_connect(partial)) as copy:
        source.backup(copy)
        people = copy.execute(f"SELECT COUNT(*) FROM {KEYS}").fetchone()[0]
        copy.execute(f"DELETE FROM {KEYS}")
        _finish(copy, "DELETE")
    partial.rename(target)
    return int(people)


def restore(copy: Path, live: Path) -> None:
    """Replace the live database (the bot stopped) by a backup, keeping the live data keys and
    the erasure records made since the backup. People erased since then are in the restored
    rows but have no key: the caller erases them again (bot.service.maintenance)."""
    if not copy.is_file():
        raise FileNotFoundError(copy)
    with closing(_connect(live)) as db:
        if db.execute(f"SELECT COUNT(*) FROM {KEYS}").fetchone()[0] == 0:
            raise NoKeys(f"{live} holds no data keys: no backup can be read without them")
    staging = live.with_name(live.name + ".restoring")
    staging.unlink(missing_ok=True)
    with closing(_connect(copy)) as source, closing(_connect(staging)) as target:
        source.backup(target)
    with closing(_connect(staging)) as db:
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("ATTACH DATABASE ? AS live", (str(live),))
        db.execute("BEGIN")
        db.execute(f"DELETE FROM main.{KEYS}")
        db.execute(f"INSERT INTO main.{KEYS} SELECT * FROM live.{KEYS}")
        db.execute(
            "INSERT INTO main.erasure_records SELECT * FROM live.erasure_records "
            "WHERE id > (SELECT COALESCE(MAX(id), 0) FROM main.erasure_records)"
        )
        db.execute("COMMIT")
        db.execute("DETACH DATABASE live")
        _finish(db, "WAL")
    for suffix in ("-wal", "-shm"):
        live.with_name(live.name + suffix).unlink(missing_ok=True)
    staging.replace(live)
