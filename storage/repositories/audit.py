"""The audit log of staff actions (append-only: legal evidence)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self, *, at: datetime, actor_id: int, action: str, subject: str | None, allowed: bool
    ) -> None:
        self._session.add(
            AuditEntry(at=at, actor_id=actor_id, action=action, subject=subject, allowed=allowed)
        )
        await self._session.flush()

    async def entries(self) -> list[AuditEntry]:
        return list((await self._session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all())
