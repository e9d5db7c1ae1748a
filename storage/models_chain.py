"""The hash chain over the evidence (the consent ledger and the audit log): one entry per row,
apart from `storage.models` to keep each module short (storage.chain writes and walks it)."""

from __future__ import annotations

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base


class ChainEntry(Base):
    """`position` 1, 2, ... over both tables; `content_hmac` is a keyed hash of the row's
    content (storage.chain.content), `entry_hash` = SHA-256 of (prev_hash, position, table,
    row_id, content_hmac). An erasure sets `mark` ("erased": the row is gone; "rewritten": the
    row was pseudonymised) and `mark_mac`, a keyed hash of the mark (and of the rewritten row),
    never the hashes: the chain stays whole."""

    __tablename__ = "evidence_chain"
    __table_args__ = (UniqueConstraint("source", "row_id"),)

    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(16))  # "consent_events" or "audit_log"
    row_id: Mapped[int] = mapped_column(Integer)
    prev_hash: Mapped[str] = mapped_column(String(64))
    content_hmac: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))
    mark: Mapped[str | None] = mapped_column(String(16))
    mark_mac: Mapped[str | None] = mapped_column(String(64))
