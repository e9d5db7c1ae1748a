"""Create or upgrade the schema to the newest migration; called at every start.

Alembic is imported only when there is something to migrate: at a usual start the database is
already at HEAD, and importing Alembic (with Mako) cost a fifth of a second of the start-up."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import dialect
from storage.crypto import MasterKeys

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The newest revision (tests/test_storage.py checks that it is Alembic's head).
HEAD = "0019_evidence_chain"


MASTER_KEYS = "master_keys"


def alembic_config(
    connection: Connection | None = None, master: MasterKeys | None = None
) -> Config:
    """`master` is for migrations that seal existing personal data (0006)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    if master is not None:
        config.attributes[MASTER_KEYS] = master
    return config


async def upgrade(engine: AsyncEngine, master: MasterKeys, revision: str = "head") -> None:
    """Foreign keys are off while SQLite rebuilds tables, and checked before the commit
    (storage.dialect.migrating)."""

    if revision == "head" and await current_revision(engine) == HEAD:
        return

    def _upgrade(connection: Connection) -> None:
        from alembic import command

        command.upgrade(alembic_config(connection, master), revision)

    async with engine.connect() as connection, dialect.migrating(connection):
        await connection.run_sync(_upgrade)
        broken = await dialect.broken_references(connection)
        if broken:
            await connection.rollback()
            raise RuntimeError(f"Migration broke {broken} foreign key references")
        await connection.commit()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; None for a new database."""
    async with engine.connect() as connection:
        try:
            return await connection.scalar(text("SELECT version_num FROM alembic_version"))
        except DBAPIError:  # no such table yet
            return None
