"""`/ledger`: the consent ledger as CSV, streamed from the database to Telegram in chunks, so an
export of any size is never held in memory whole."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncGenerator, AsyncIterable, Iterable
from typing import Any

from aiogram import Bot
from aiogram.types import InputFile

from storage.models import ConsentEvent

LEDGER_COLUMNS = (
    "event_id",
    "user_id",
    "purpose",
    "state",
    "at_utc",
    "policy_version",
    "source",
    "actor_id",
    "text_id",
)


def ledger_row(event: ConsentEvent) -> list[Any]:
    return [
        event.id,
        event.user_id,
        event.purpose,
        "granted" if event.granted else "withdrawn",
        event.at.isoformat(),
        event.policy_version,
        event.source,
        event.actor_id,
        event.text_id or "",
    ]


class CsvStream(InputFile):
    """A CSV file whose rows come from an async iterable; read() yields it chunk by chunk."""

    def __init__(
        self,
        header: Iterable[str],
        rows: AsyncIterable[list[Any]],
        filename: str,
        chunk_size: int = 64 * 1024,
    ) -> None:
        super().__init__(filename=filename, chunk_size=chunk_size)
        self._header = list(header)
        self._rows = rows

    async def read(self, bot: Bot) -> AsyncGenerator[bytes, None]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(self._header)
        async for row in self._rows:
            writer.writerow(row)
            if buffer.tell() >= self.chunk_size:
                yield buffer.getvalue().encode("utf-8")
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode("utf-8")


async def ledger_rows(events: AsyncIterable[ConsentEvent]) -> AsyncGenerator[list[Any], None]:
    async for event in events:
        yield ledger_row(event)
