"""Read-only figures for /healthz and /metrics (`HealthRepository`): a few aggregate queries, no
personal data. The /stats figures are `stats`."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import STAFF_KINDS, UNDELIVERED, CampaignStatus, OutboxStatus
from storage.models import Campaign, Delivery, OutboxItem, Request


@dataclass(frozen=True)
class Snapshot:
    outbox_backlog: int
    outbox_oldest: datetime | None
    failed_outbox: int
    failed_deliveries: int
    open_requests: int
    overdue_requests: int
    # (campaign id, delivery status) -> count, for campaigns being sent now
    campaigns: dict[tuple[int, str], int]


class HealthRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def ping(self) -> None:
        await self._session.execute(text("SELECT 1"))

    async def oldest_pending_staff_item(self) -> datetime | None:
        """When the oldest undelivered message to the admin group was written."""
        return await self._session.scalar(
            select(func.min(OutboxItem.created_at)).where(
                OutboxItem.status == OutboxStatus.PENDING, OutboxItem.kind.in_(STAFF_KINDS)
            )
        )

    async def snapshot(self, now: datetime, open_statuses: Collection[str]) -> Snapshot:
        run = self._session.execute
        backlog, oldest = (
            await run(
                select(func.count(), func.min(OutboxItem.created_at)).where(
                    OutboxItem.status == OutboxStatus.PENDING
                )
            )
        ).one()
        failed_outbox = await self._session.scalar(
            select(func.count()).where(OutboxItem.status.in_(UNDELIVERED))
        )
        failed_deliveries = await self._session.scalar(
            select(func.count()).where(Delivery.status.in_(UNDELIVERED))
        )
        open_count, overdue = (
            await run(
                select(
                    func.count(),
                    func.count().filter(Request.due_at < now),
                ).where(Request.status.in_(open_statuses))
            )
        ).one()
        rows = await run(
            select(Delivery.campaign_id, Delivery.status, func.count())
            .join(Campaign, Campaign.id == Delivery.campaign_id)
            .where(Campaign.status == CampaignStatus.SENDING)
            .group_by(Delivery.campaign_id, Delivery.status)
        )
        return Snapshot(
            outbox_backlog=int(backlog),
            outbox_oldest=oldest,
            failed_outbox=int(failed_outbox or 0),
            failed_deliveries=int(failed_deliveries or 0),
            open_requests=int(open_count),
            overdue_requests=int(overdue),
            campaigns={(cid, status): int(n) for cid, status, n in rows.all()},
        )
