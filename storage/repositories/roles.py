"""Staff roles set from the bot (beside those in the settings)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import StaffRole


class RoleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, user_id: int) -> str | None:
        row = await self._session.get(StaffRole, user_id, populate_existing=True)
        return None if row is None else row.role

    async def set(self, user_id: int, role: str, *, set_by: int, now: datetime) -> None:
        row = await self._session.get(StaffRole, user_id)
        if row is None:
            self._session.add(StaffRole(user_id=user_id, role=role, set_by=set_by, set_at=now))
        else:
            row.role, row.set_by, row.set_at = role, set_by, now
        await self._session.flush()

    async def remove(self, user_id: int) -> bool:
        """The role given with /role taken back; False when there was none."""
        row = await self._session.get(StaffRole, user_id)
        if row is None:
            return False
        await self._session.delete(row)
        await self._session.flush()
        return True

    async def every(self) -> list[StaffRole]:
        rows = await self._session.scalars(select(StaffRole).order_by(StaffRole.user_id))
        return list(rows)
