"""The audit log of staff actions (append-only: legal evidence)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import chain
from storage.models import AuditEntry


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self, *, at: datetime, actor_id: int, action: str, subject: str | None, allowed: bool
    ) -> None:
        entry = AuditEntry(
            at=at, actor_id=actor_id, action=action, subject=subject, allowed=allowed
        )
        self._session.add(entry)
        await self._session.flush()
        await chain.append(self._session, chain.AUDIT, [entry.id])  # same transaction

    async def entries(self) -> list[AuditEntry]:
        return list((await self._session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all())
