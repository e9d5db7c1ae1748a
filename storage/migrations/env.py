"""Alembic environment. The bot runs migrations itself at start (storage.migrate.upgrade);
developers create new revisions with `alembic -c storage/alembic.ini revision --autogenerate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite can only ALTER through table copies
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url", "sqlite:///data/bot.db")
    with create_engine(url.replace("+aiosqlite", "")).connect() as sync_connection:
        _run(sync_connection)
