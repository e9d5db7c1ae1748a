"""Plain rows for /stats (the figures of a period); `health` serves /healthz and /metrics."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import DeliveryStatus
from storage.models import Campaign, ConsentEvent, Delivery, Request, User


class StatsRepository:
    """Plain rows for /stats, limited to the period asked for."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def received(self, start: datetime, end: datetime) -> list[tuple[str, datetime]]:
        rows = await self._session.execute(
            select(Request.type, Request.received_at).where(
                Request.received_at >= start, Request.received_at < end
            )
        )
        return [(kind, at) for kind, at in rows.all()]

    async def closed(
        self, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime, datetime]]:
        rows = await self._session.execute(
            select(Request.received_at, Request.due_at, Request.closed_at).where(
                Request.closed_at >= start, Request.closed_at < end
            )
        )
        return [(received, due, closed) for received, due, closed in rows.all()]

    async def overdue(self, statuses: frozenset[str], now: datetime) -> int:
        query = select(func.count(Request.id)).where(
            Request.status.in_(statuses), Request.due_at < now
        )
        return int(await self._session.scalar(query) or 0)

    async def ledger_until(self, end: datetime) -> list[tuple[int, str, bool, datetime]]:
        rows = await self._session.execute(
            select(
                ConsentEvent.user_id, ConsentEvent.purpose, ConsentEvent.granted, ConsentEvent.at
            ).where(ConsentEvent.at < end)
        )
        return [(u, p, g, at) for u, p, g, at in rows.all()]

    async def joined_until(self, end: datetime) -> list[datetime]:
        rows = await self._session.scalars(select(User.created_at).where(User.created_at < end))
        return list(rows)

    async def campaigns(self, kind: str, start: datetime, end: datetime) -> tuple[int, int]:
        """Campaigns of `kind` started in the period, and their messages delivered."""
        started = select(Campaign.id).where(
            Campaign.kind == kind, Campaign.started_at >= start, Campaign.started_at < end
        )
        count = await self._session.scalar(select(func.count()).select_from(started.subquery()))
        delivered = await self._session.scalar(
            select(func.count(Delivery.id)).where(
                Delivery.campaign_id.in_(started), Delivery.status == DeliveryStatus.SENT
            )
        )
        return int(count or 0), int(delivered or 0)

    async def withdrawals(self, source: str, start: datetime, end: datetime) -> int:
        query = select(func.count(ConsentEvent.id)).where(
            ConsentEvent.source == source,
            ConsentEvent.granted.is_(False),
            ConsentEvent.at >= start,
            ConsentEvent.at < end,
        )
        return int(await self._session.scalar(query) or 0)
