"""`python -m bot verify [--database-url URL]`: walk the evidence chain (storage.chain_verify)
of the live database or of a backup (a SQLite file's path or any database URL). Exit 0 and one
line when the chain is whole; otherwise the first entry that does not match, and exit 1."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.errors import ConfigError
from bot.service.config import load_settings
from storage.chain_verify import Walk, walk
from storage.db import create_engine, read_only_engine

EXIT_BROKEN = 1
EXIT_CONFIG = 2


def _engine(given: str | None, default: str) -> AsyncEngine:
    """The database to check: the configured one, a URL, or a file opened read-only."""
    if given and "://" not in given:
        path = Path(given)
        if not path.is_file():
            raise ConfigError(f"No database file at {path}")
        return read_only_engine(path)
    return create_engine(given or default)


async def run_walk(engine: AsyncEngine, key: bytes) -> Walk:
    try:
        async with engine.connect() as connection:
            return await walk(connection, key)
    finally:
        await engine.dispose()


def describe(result: Walk) -> str:
    if result.broken is None:
        return (
            f"Chain whole: {result.entries} entries, {result.erased} erased entries, "
            "last anchor: none"
        )
    b = result.broken
    return (
        f"Chain broken at entry {b.position}: {b.source} row {b.row_id} {b.kind} "
        f"({result.entries} entries)"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot verify")
    parser.add_argument("--database-url", help="a database URL or a SQLite file (a backup)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        engine = _engine(args.database_url, settings.database_url)
        result = asyncio.run(run_walk(engine, settings.chain_key()))
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG
    print(describe(result))
    return 0 if result.broken is None else EXIT_BROKEN
