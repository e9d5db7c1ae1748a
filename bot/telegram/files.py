"""Files staff download, all CSV written by one writer (`CsvRows`, UTC times): the breach
register (/breaches, built whole: it is short), the register of requests (/register) and the
consent ledger (/ledger). The last two are streamed from the database to Telegram in chunks
(`CsvStream`), so an export of any size is never held in memory whole."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Iterator
from datetime import datetime
from typing import Any

from aiogram import Bot
from aiogram.types import InputFile

from storage.models import Breach, ConsentEvent, Delivery


class CsvRows:
    """A header, then rows, written as CSV (the csv module's default dialect) into a buffer
    that is taken out as UTF-8 bytes, whole or chunk by chunk."""

    def __init__(self, header: Iterable[str]) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)
        self._writer.writerow(list(header))

    def add(self, row: Iterable[Any]) -> None:
        self._writer.writerow(row)

    @property
    def size(self) -> int:
        """Characters written since the last `take`."""
        return self._buffer.tell()

    def take(self) -> bytes:
        """What was written since the last `take`, and an empty buffer for what follows."""
        data = self._buffer.getvalue().encode("utf-8")
        self._buffer.seek(0)
        self._buffer.truncate()
        return data


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
        csv_rows = CsvRows(self._header)
        async for row in self._rows:
            csv_rows.add(row)
            if csv_rows.size >= self.chunk_size:
                yield csv_rows.take()
        yield csv_rows.take()


BREACH_COLUMNS = (
    "breach",
    "known",
    "recorded",
    "what",
    "data",
    "consequences",
    "measures",
    "affected",
    "people",
    "records",
    "delay",
    "authority_due",
    "authority_notified",
    "users_due",
    "users_told",
    "user_id",
    "delivery",
    "sent",
)


def breach_rows(rows: list[tuple[Breach, list[Delivery]]]) -> Iterator[list[Any]]:
    """One row per user told of a breach (or one row without users)."""
    for breach, deliveries in rows:
        head = [
            breach.id,
            breach.known_at.isoformat(),
            breach.created_at.isoformat(),
            breach.what,
            breach.categories,
            breach.consequences,
            breach.measures,
            breach.affected,
            breach.people or "",
            breach.records or "",
            breach.delay or "",
            breach.authority_due_at.isoformat(),
            breach.authority_notified_at.isoformat() if breach.authority_notified_at else "",
            breach.users_due_at.isoformat() if breach.users_due_at else "",
            breach.users_told_at.isoformat() if breach.users_told_at else "",
        ]
        for d in deliveries or [None]:
            tail = (
                ["", "", ""]
                if d is None
                else [
                    d.user_id,
                    d.status,
                    d.sent_at.isoformat() if d.sent_at else "",
                ]
            )
            yield head + tail


def breaches_csv(rows: list[tuple[Breach, list[Delivery]]]) -> bytes:
    """The breach register: one row per user told (or one row without users), UTC times."""
    csv_rows = CsvRows(BREACH_COLUMNS)
    for row in breach_rows(rows):
        csv_rows.add(row)
    return csv_rows.take()


REGISTER_COLUMNS = (
    "number",
    "type",
    "user_id",
    "received",
    "due",
    "status",
    "closed",
    "handled_by",
)


# With the operator's systems: each system's outcome per request (GDPR art. 19: the record that
# each recipient was told of an erasure or correction).
SYSTEMS_COLUMN = "systems"
Outcomes = dict[int, list[tuple[str, str, datetime | None, int | None]]]


def systems_cell(outcomes: list[tuple[str, str, datetime | None, int | None]]) -> str:
    """`system:status[:when][:by staff]`, one per system, `; ` between them."""
    cells = []
    for system_id, status, at, by in outcomes:
        parts = [system_id, status]
        if at is not None:
            parts.append(at.isoformat())
        if by is not None:
            parts.append(f"by {by}")
        cells.append(":".join(parts))
    return "; ".join(cells)


async def register_rows(
    rows: AsyncIterable[tuple[Any, ...]], outcomes: Outcomes | None = None
) -> AsyncGenerator[list[Any], None]:
    """The register of all requests, for the operator's accountability (UTC times); with
    `outcomes` (a pack with systems), the systems' column last."""
    async for number, kind, user_id, received, due, status, closed, handled_by in rows:
        row = [
            number,
            kind,
            user_id,
            received.isoformat(),
            due.isoformat(),
            status,
            closed.isoformat() if closed else "",
            handled_by or "",
        ]
        if outcomes is not None:
            row.append(systems_cell(outcomes.get(number, [])))
        yield row


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


async def ledger_rows(events: AsyncIterable[ConsentEvent]) -> AsyncGenerator[list[Any], None]:
    """The consent ledger, one row per event (UTC times)."""
    async for event in events:
        yield ledger_row(event)
