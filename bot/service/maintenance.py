"""Operator commands beside running the bot: `python -m bot backup PATH`, `restore PATH` and
`rotate-key`. Each returns the one line it prints; problems raise ConfigError (exit 2)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError

from bot.core.errors import ConfigError
from bot.domain.erasure import pseudonym
from bot.service.config import Settings
from storage import backup as sqlite_backup
from storage import migrate
from storage.crypto import KeyProblem, check_master, rotate
from storage.db import compact, create_engine, session_factory
from storage.repositories import Repositories

PG_DUMP = (
    "This database is not an SQLite file: back it up with "
    "pg_dump --exclude-table-data=data_keys (README, 'Backups')"
)


def _sqlite_file(settings: Settings) -> Path:
    path = settings.sqlite_path()
    if path is None:
        raise ConfigError(PG_DUMP)
    if not path.exists():
        raise ConfigError(f"Configuration error: no database at {path}")
    return path


def backup(settings: Settings, target: Path) -> str:
    live = _sqlite_file(settings)
    try:
        people = sqlite_backup.backup(live, target)
    except FileExistsError as error:
        raise ConfigError(f"Backup not written: {error}") from None
    return f"Backup written to {target}: {people} people's data, sealed; no data keys in it"


async def restore(settings: Settings, source: Path | None) -> str:
    """Put a backup in place of the live database (stop the bot first), keeping the live data
    keys, then erase again everyone erased since the backup was made. Without `source` (e.g.
    PostgreSQL, restored by the operator with pg_restore, data keys kept) only the second step."""
    master = settings.master_keys()
    if source is not None:
        live = _sqlite_file(settings)
        try:
            await asyncio.to_thread(sqlite_backup.restore, source, live)
        except FileNotFoundError:
            raise ConfigError(f"Restore not done: no backup at {source}") from None
        except sqlite_backup.NoKeys as error:
            raise ConfigError(f"Restore not done: {error}") from None
    engine = create_engine(settings.database_url, settings.sqlite_path())
    try:
        await migrate.upgrade(engine, master)
        async with session_factory(engine, master, settings.chain_key())() as session:
            repo = Repositories(session)
            erased = await repo.erasure.keyless()
            secret = settings.pseudonym_secret.get_secret_value()
            for user_id in erased:
                await repo.erasure.erase(user_id, pseudonym(secret, user_id))
            await repo.commit()  # a maintenance command's own session: durable before compacting
        await compact(engine)
    finally:
        await engine.dispose()
    done = f"Restored {source}" if source is not None else "Checked the restored database"
    return f"{done}; erased again {len(erased)} people erased since that backup"


async def check_key(settings: Settings) -> None:
    """Before anything else runs: the database answers, and the master key opens the data keys
    already stored."""
    master = settings.master_keys()
    engine = create_engine(settings.database_url, settings.sqlite_path())
    try:
        await check_master(engine, master)
    except KeyProblem as problem:
        raise ConfigError(f"Configuration error: {problem}") from None
    except (OSError, InterfaceError, OperationalError) as error:
        raise unreachable(settings, error) from None
    finally:
        await engine.dispose()


def unreachable(settings: Settings, error: Exception) -> ConfigError:
    """The database did not answer: which server (host:port, never the password) and why, in
    one line instead of a driver's traceback."""
    url = make_url(settings.database_url)
    where = settings.sqlite_path() or f"{url.host or 'localhost'}:{url.port or 5432}"
    orig = getattr(error, "orig", None) or error
    errno = getattr(orig, "errno", None)
    reason = (os.strerror(errno) if isinstance(errno, int) and errno > 0 else None) or (
        getattr(orig, "strerror", None) or type(orig).__name__
    )
    return ConfigError(f"Configuration error: cannot reach the database at {where}: {reason}")


async def rotate_key(settings: Settings) -> str:
    """Re-wrap every data key under DATA_KEY; DATA_KEY_PREVIOUS opens the ones not yet done."""
    master = settings.master_keys()
    engine = create_engine(settings.database_url, settings.sqlite_path())
    try:
        await migrate.upgrade(engine, master)
        await check_master(engine, master)
        done = await rotate(engine, master)
    except KeyProblem as problem:
        raise ConfigError(f"Configuration error: {problem}") from None
    finally:
        await engine.dispose()
    return (
        f"Re-wrapped {done} data keys under master key {master.current_id}; none is left under "
        "another key, so DATA_KEY_PREVIOUS can be removed and the old key destroyed"
    )
