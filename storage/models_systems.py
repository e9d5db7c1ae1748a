"""The model of the jobs that carry requests out in the operator's systems (apart from
`storage.models` to keep each module short; the same declarative base and column types)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, Personal, UTCDateTime


class SystemJob(Base):
    """A request carried out in one of the operator's systems (the pack's `[[systems]]`),
    created in the approval's transaction. Claimed like the outbox (`pending` -> `running`,
    `claimed_at` set, one conditional UPDATE); a job left `running` past the lease was cut by
    a crash and runs again: every action is idempotent. `request_id` is empty for a storage-
    limitation erasure (no request). `data` is what an access job collected, sealed under the
    person's key and purged `purge_at` (after delivery); `counts` is per table, no values."""

    __tablename__ = "system_jobs"
    __owner__: ClassVar[tuple[str, ...]] = ("user_id",)
    __table_args__ = (
        UniqueConstraint("request_id", "system_id"),
        Index("ix_system_jobs_queue", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    system_id: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))  # the request type it carries out
    status: Mapped[str] = mapped_column(String(16))  # storage.enums.JobStatus
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(200))  # never a value or a secret
    counts: Mapped[str | None] = mapped_column(Text)  # JSON {table: rows read or changed}
    data: Mapped[str | None] = mapped_column(Personal)  # JSON: what access collected
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by: Mapped[int | None] = mapped_column(BigInteger)  # staff who ticked or explained
    note: Mapped[str | None] = mapped_column(Personal)  # staff's note (a tick, an explanation)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purge_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
