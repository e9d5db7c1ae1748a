"""Walk the evidence chain against the rows (`python -m bot verify`, bot.service.verify).

Read-only: the chain, every consent event and every audit-log row are read once. The first
place that does not match is reported with its kind: "changed" (a row or an entry differs from
what was hashed), "inserted" (a row or entry the chain never had), "removed" (a row or entry
gone without an erasure mark) or "reordered" (two rows' or entries' contents exchanged)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.chain import (
    ERASED,
    FIELDS,
    GENESIS,
    REWRITTEN,
    TABLES,
    content_hmac,
    entry_hash,
    erased_mac,
    rewritten_mac,
)
from storage.models_chain import ChainEntry

CHANGED = "changed"
INSERTED = "inserted"
REMOVED = "removed"
REORDERED = "reordered"


@dataclass(frozen=True)
class Break:
    position: int  # the chain entry that does not match (for an unchained row: where it'd go)
    kind: str  # CHANGED, INSERTED, REMOVED, REORDERED
    source: str
    row_id: int


@dataclass(frozen=True)
class Walk:
    entries: int
    erased: int  # entries whose row is gone or pseudonymised by an erasure
    broken: Break | None


async def walk(connection: AsyncConnection, key: bytes) -> Walk:
    entries = list(
        (await connection.execute(select(ChainEntry.__table__).order_by(ChainEntry.position)))
        .mappings()
        .all()
    )
    rows: dict[tuple[str, int], Any] = {}
    for source, table in TABLES.items():
        columns = [table.c.id, *(table.c[name] for name in FIELDS[source])]
        for row in (await connection.execute(select(*columns))).all():
            rows[(source, row.id)] = row
    erased = 0
    broken = _walk_entries(entries, rows, key)
    if broken is None:
        broken = _unchained(entries, rows)
    for entry in entries:
        erased += entry["mark"] is not None
    return Walk(len(entries), erased, broken)


def _walk_entries(entries: list[Any], rows: dict[tuple[str, int], Any], key: bytes) -> Break | None:
    prev = GENESIS
    hashes = {e["content_hmac"]: e["position"] for e in entries}
    for expected, entry in enumerate(entries, start=1):
        position, source, row_id = entry["position"], entry["source"], entry["row_id"]
        where = (source, row_id)
        if position != expected:
            return Break(expected, REMOVED, source, row_id)  # an entry is missing here
        digest = entry_hash(entry["prev_hash"], position, source, row_id, entry["content_hmac"])
        if digest != entry["entry_hash"]:
            moved = any(
                entry_hash(
                    entry["prev_hash"], other["position"], source, row_id, entry["content_hmac"]
                )
                == entry["entry_hash"]
                for other in entries
            )
            return Break(position, REORDERED if moved else CHANGED, source, row_id)
        if entry["prev_hash"] != prev:
            return Break(position, INSERTED, source, row_id)  # an entry put in before it
        prev = digest
        kind = _row_kind(entry, rows.get(where), key, hashes)
        if kind is not None:
            return Break(position, kind, source, row_id)
    return None


def _row_kind(entry: Any, row: Any, key: bytes, hashes: dict[str, int]) -> str | None:
    source, mark, mac = entry["source"], entry["mark"], entry["mark_mac"]
    if row is None:
        if mark == ERASED and mac == erased_mac(key, entry["entry_hash"]):
            return None
        return REMOVED
    content = content_hmac(key, source, row)
    if content == entry["content_hmac"]:
        return None
    if mark == REWRITTEN and mac == rewritten_mac(key, entry["entry_hash"], source, row):
        return None
    if content in hashes and hashes[content] != entry["position"]:
        return REORDERED  # the content hashed for another entry
    return CHANGED


def _unchained(entries: list[Any], rows: dict[tuple[str, int], Any]) -> Break | None:
    chained = {(e["source"], e["row_id"]) for e in entries}
    extra = sorted((row_id, source) for source, row_id in rows if (source, row_id) not in chained)
    if not extra:
        return None
    row_id, source = extra[0]
    return Break(len(entries) + 1, INSERTED, source, row_id)
