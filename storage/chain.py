"""The hash chain over the evidence: every consent event and audit-log row gets an entry
(storage.models_chain.ChainEntry), appended in the row's own transaction.

The content hash is an HMAC-SHA256 under the chain key, which the session carries
(`session.info[CHAIN_KEY]`, storage.db.session_factory). The key is derived from the pseudonym
secret (`chain_key`), not from the master key: the master key is rotated (`rotate-key`) and the
chain's hashes must not change, while the pseudonym secret never changes (erasure records are
found by it) and is kept apart from the database like the master key. Being keyed, a hash stops
anyone holding the database from confirming a guessed row of an erased person.

The content leaves out the row's ID (the entry binds it), so two rows whose contents were
swapped are seen as reordered. Erasure deletes rows (the entry is marked "erased") or rewrites
them (actor_id -> 0, subject -> pseudonym: marked "rewritten", the mark's MAC covering the new
content); the hashes are never touched, so the chain stays whole."""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialect import Space, lock_for_transaction
from storage.models import AuditEntry, ConsentEvent
from storage.models_chain import ChainEntry

CHAIN_KEY = "chain_key"
GENESIS = "0" * 64
ERASED = "erased"
REWRITTEN = "rewritten"
CONSENTS = "consent_events"
AUDIT = "audit_log"
_EVENTS: Table = ConsentEvent.__table__  # type: ignore[assignment]
_AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]
TABLES: dict[str, Table] = {CONSENTS: _EVENTS, AUDIT: _AUDIT}
# The fields hashed, in order (not the ID: the entry binds it).
FIELDS = {
    CONSENTS: (
        "user_id",
        "purpose",
        "granted",
        "at",
        "policy_version",
        "source",
        "actor_id",
        "text_id",
    ),
    AUDIT: ("at", "actor_id", "action", "subject", "allowed"),
}


def chain_key(pseudonym_secret: str) -> bytes:
    return hmac.new(pseudonym_secret.encode(), b"evidence-chain/v1", hashlib.sha256).digest()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(timespec="microseconds")
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    return str(value)


def canonical(source: str, row: Any) -> bytes:
    """The row's content as hashed: its fields (a mapping or a row), as JSON, in order."""
    values = row if isinstance(row, dict) else row._mapping
    if source == CONSENTS:
        values = {**values, "granted": bool(values["granted"])}
    else:
        values = {**values, "allowed": bool(values["allowed"])}
    return json.dumps([_plain(values[name]) for name in FIELDS[source]]).encode()


def _mac(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def content_hmac(key: bytes, source: str, row: Any) -> str:
    return _mac(key, source.encode() + b"|" + canonical(source, row))


def entry_hash(prev: str, position: int, source: str, row_id: int, content: str) -> str:
    return hashlib.sha256(f"{prev}|{position}|{source}|{row_id}|{content}".encode()).hexdigest()


def erased_mac(key: bytes, entry: str) -> str:
    return _mac(key, f"{ERASED}|{entry}".encode())


def rewritten_mac(key: bytes, entry: str, source: str, row: Any) -> str:
    return _mac(key, f"{REWRITTEN}|{entry}|".encode() + canonical(source, row))


def key_of(session: AsyncSession) -> bytes:
    key = session.sync_session.info.get(CHAIN_KEY)
    if key is None:
        raise RuntimeError("the session has no chain key (storage.db.session_factory)")
    return key  # type: ignore[no-any-return]


async def _rows(session: AsyncSession, source: str, ids: Iterable[int]) -> list[Any]:
    table = TABLES[source]
    columns = [table.c.id, *(table.c[name] for name in FIELDS[source])]
    result = await session.execute(
        select(*columns).where(table.c.id.in_(list(ids))).order_by(table.c.id)
    )
    return list(result.all())


async def append(session: AsyncSession, source: str, row_ids: Sequence[int]) -> None:
    """Chain rows just written, in this transaction. The content is read back from the
    database, so it is hashed exactly as stored. PostgreSQL: an advisory lock serialises the
    appenders from here to the commit (SQLite: the row's insert holds the write lock)."""
    if not row_ids:
        return
    key = key_of(session)
    await lock_for_transaction(session, Space.CHAIN, "evidence")
    head = (
        await session.execute(
            select(ChainEntry.position, ChainEntry.entry_hash)
            .order_by(ChainEntry.position.desc())
            .limit(1)
        )
    ).first()
    position, prev = (head[0], head[1]) if head is not None else (0, GENESIS)
    entries = []
    for row in await _rows(session, source, row_ids):
        position += 1
        content = content_hmac(key, source, row)
        digest = entry_hash(prev, position, source, row.id, content)
        entries.append(
            {
                "position": position,
                "source": source,
                "row_id": row.id,
                "prev_hash": prev,
                "content_hmac": content,
                "entry_hash": digest,
            }
        )
        prev = digest
    await session.execute(ChainEntry.__table__.insert(), entries)  # type: ignore[attr-defined]


async def backfill(session: AsyncSession) -> int:
    """Chain the rows that have no entry (those written before the chain existed): each table
    in ID order, the two merged by time. Returns how many were chained; the caller commits."""
    pending: list[list[tuple[datetime, str, int]]] = []
    for source, table in TABLES.items():
        chained = select(ChainEntry.row_id).where(ChainEntry.source == source)
        rows = await session.execute(
            select(table.c.at, table.c.id).where(table.c.id.not_in(chained)).order_by(table.c.id)
        )
        pending.append([(at, source, row_id) for at, row_id in rows.all()])
    merged = list(heapq.merge(*pending, key=lambda item: item[0]))
    for _, source, row_id in merged:
        await append(session, source, [row_id])
    return len(merged)


async def entries_of(session: AsyncSession, source: str, ids: Iterable[int]) -> list[ChainEntry]:
    rows = await session.scalars(
        select(ChainEntry).where(ChainEntry.source == source, ChainEntry.row_id.in_(list(ids)))
    )
    return list(rows)


async def mark_erased(session: AsyncSession, source: str, ids: Iterable[int]) -> None:
    """The rows are about to be deleted by an erasure: their entries say so."""
    key = key_of(session)
    for entry in await entries_of(session, source, ids):
        await session.execute(
            update(ChainEntry)
            .where(ChainEntry.position == entry.position)
            .values(mark=ERASED, mark_mac=erased_mac(key, entry.entry_hash))
        )


async def mark_rewritten(session: AsyncSession, source: str, ids: Iterable[int]) -> None:
    """The rows were just pseudonymised by an erasure: their entries say so, and the mark's
    MAC covers the new content."""
    ids = list(ids)
    if not ids:
        return
    key = key_of(session)
    rows = {row.id: row for row in await _rows(session, source, ids)}
    for entry in await entries_of(session, source, ids):
        row = rows.get(entry.row_id)
        if row is None:
            continue
        await session.execute(
            update(ChainEntry)
            .where(ChainEntry.position == entry.position)
            .values(mark=REWRITTEN, mark_mac=rewritten_mac(key, entry.entry_hash, source, row))
        )
