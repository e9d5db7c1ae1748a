"""Plain rows for the desk app's person, breach and figure views (bot.domain.desk_more)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import DeliveryStatus
from storage.models import ConsentEvent, ConsentState, Delivery, Request, User


class DeskMoreRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def user_exists(self, user_id: int) -> bool:
        found = await self._session.scalar(select(User.id).where(User.id == user_id))
        return found is not None

    async def requests_of(self, user_id: int) -> list[tuple[Any, ...]]:
        """A person's requests (no personal column, nothing decrypted), newest first."""
        rows = await self._session.execute(
            select(
                Request.id,
                Request.type,
                Request.status,
                Request.received_at,
                Request.due_at,
                Request.closed_at,
                Request.hold_until,
                Request.handled_by,
                Request.verification,
            )
            .where(Request.user_id == user_id)
            .order_by(Request.id.desc())
        )
        return [tuple(row) for row in rows.all()]

    async def consent_states(self, user_id: int) -> list[tuple[str, bool, str, datetime]]:
        rows = await self._session.execute(
            select(
                ConsentState.purpose,
                ConsentState.granted,
                ConsentState.policy_version,
                ConsentState.updated_at,
            )
            .where(ConsentState.user_id == user_id)
            .order_by(ConsentState.purpose)
        )
        return [(p, g, v, at) for p, g, v, at in rows.all()]

    async def closed_by_type(
        self, start: datetime, end: datetime
    ) -> list[tuple[str, datetime, datetime, datetime]]:
        """(type, received, due, closed) of the requests closed in [start, end)."""
        rows = await self._session.execute(
            select(Request.type, Request.received_at, Request.due_at, Request.closed_at).where(
                Request.closed_at >= start, Request.closed_at < end
            )
        )
        return [(k, r, d, c) for k, r, d, c in rows.all()]

    async def open_received(self, statuses: frozenset[str]) -> list[datetime]:
        rows = await self._session.scalars(
            select(Request.received_at).where(Request.status.in_(statuses))
        )
        return list(rows)

    async def grants(self, start: datetime, end: datetime) -> list[tuple[str, datetime]]:
        """(purpose, at) of every consent granted in [start, end)."""
        rows = await self._session.execute(
            select(ConsentEvent.purpose, ConsentEvent.at).where(
                ConsentEvent.granted.is_(True), ConsentEvent.at >= start, ConsentEvent.at < end
            )
        )
        return [(p, at) for p, at in rows.all()]

    async def deliveries(self, campaign_id: int) -> tuple[int, int]:
        """(recipients, told) of a campaign: its deliveries, and those sent."""
        total = await self._session.scalar(
            select(func.count(Delivery.id)).where(Delivery.campaign_id == campaign_id)
        )
        sent = await self._session.scalar(
            select(func.count(Delivery.id)).where(
                Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.SENT
            )
        )
        return int(total or 0), int(sent or 0)
