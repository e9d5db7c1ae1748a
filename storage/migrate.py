"""Create or upgrade the schema to the newest migration; called at every start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.crypto import MasterKeys

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


MASTER_KEYS = "master_keys"


def alembic_config(
    connection: Connection | None = None, master: MasterKeys | None = None
) -> Config:
    """`master` is for migrations that seal existing personal data (0006)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    if master is not None:
        config.attributes[MASTER_KEYS] = master
    return config


async def upgrade(engine: AsyncEngine, master: MasterKeys, revision: str = "head") -> None:
    """SQLite rebuilds tables to alter them; dropping the old copy with foreign keys on would
    cascade into every child row, so the migration runs with them off (SQLite's documented
    procedure: the pragma is set outside a transaction) and checks them before turning back."""

    def _upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection, master), revision)

    sqlite = engine.dialect.name == "sqlite"
    async with engine.connect() as connection:
        if sqlite:
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        await connection.run_sync(_upgrade)
        if sqlite:
            broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
            if broken:
                await connection.rollback()
                raise RuntimeError(f"Migration broke {len(broken)} foreign key references")
        await connection.commit()
        if sqlite:
            await connection.exec_driver_sql("PRAGMA foreign_keys=ON")
