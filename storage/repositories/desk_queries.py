"""What the desk app (bot.service.desk_app) reads of requests: a page of the table with its
filters, the counts beside them, and a request's staff actions from the audit log. Only the
columns that are not personal are read (no request's details are unsealed for the table)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import OPEN, RequestStatus
from storage.models import AuditEntry, Request, RequestAttachment


@dataclass(frozen=True)
class RequestFilter:
    """The table's filters; every one set narrows it. `statuses` empty: every status."""

    statuses: Collection[str] = ()
    kind: str | None = None
    overdue: bool = False
    due_before: datetime | None = None  # open and due before this moment
    due_after: datetime | None = None  # ... and not before this one
    handled_by: int | None = None
    number: int | None = None  # a request number or a user ID


@dataclass(frozen=True)
class Row:
    id: int
    type: str
    status: str
    user_id: int
    received_at: datetime
    due_at: datetime
    handled_by: int | None


@dataclass(frozen=True)
class Counts:
    open: int
    overdue: int
    due_week: int
    mine: int
    carrying_out: int
    waiting: int


_COLUMNS = (
    Request.id,
    Request.type,
    Request.status,
    Request.user_id,
    Request.received_at,
    Request.due_at,
    Request.handled_by,
)


def _open() -> ColumnElement[bool]:
    return Request.status.in_([str(s) for s in OPEN])


class DeskQueries:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def _where(self, f: RequestFilter, now: datetime) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if f.statuses:
            where.append(Request.status.in_(list(f.statuses)))
        if f.kind:
            where.append(Request.type == f.kind)
        if f.overdue:
            where += [_open(), Request.due_at < now]
        if f.due_before is not None:
            where += [_open(), Request.due_at < f.due_before]
        if f.due_after is not None:
            where.append(Request.due_at >= f.due_after)
        if f.handled_by is not None:
            where.append(Request.handled_by == f.handled_by)
        if f.number is not None:
            where.append(or_(Request.id == f.number, Request.user_id == f.number))
        return where

    async def page(
        self, f: RequestFilter, now: datetime, offset: int, limit: int
    ) -> tuple[list[Row], int]:
        """One page of the table, sorted by due date (then number), and how many match."""
        where = self._where(f, now)
        total = await self._session.scalar(
            select(func.count()).select_from(Request).where(and_(True, *where))
        )
        query = (
            select(*_COLUMNS)
            .where(and_(True, *where))
            .order_by(Request.due_at, Request.id)
            .offset(offset)
            .limit(limit)
        )
        rows = [Row(*r) for r in (await self._session.execute(query)).all()]
        return rows, int(total or 0)

    async def counts(self, now: datetime, staff_id: int) -> Counts:
        """How many open requests each of the table's quick filters shows."""
        week = now + timedelta(days=7)

        def n(*where: ColumnElement[bool]) -> ColumnElement[int]:
            # SUM(CASE ...) rather than COUNT(*) FILTER: MariaDB has no FILTER clause.
            return func.sum(case((and_(*where), 1), else_=0))

        query = select(
            n(_open()),
            n(_open(), Request.due_at < now),
            n(_open(), Request.due_at >= now, Request.due_at < week),
            n(_open(), Request.handled_by == staff_id),
            n(Request.status == RequestStatus.CARRYING_OUT.value),
            n(Request.status == RequestStatus.WAITING.value),
        ).select_from(Request)
        values = (await self._session.execute(query)).one()
        return Counts(*(int(v or 0) for v in values))

    async def staff_actions(self, request_id: int) -> list[AuditEntry]:
        """What staff did on the request (allowed actions only), oldest first."""
        query = (
            select(AuditEntry)
            .where(
                AuditEntry.subject == str(request_id),
                AuditEntry.allowed.is_(True),
                AuditEntry.action.like("request.%"),
            )
            .order_by(AuditEntry.at, AuditEntry.id)
        )
        return list((await self._session.scalars(query)).all())

    async def attachments(self, request_id: int) -> list[RequestAttachment]:
        query = (
            select(RequestAttachment)
            .where(RequestAttachment.request_id == request_id)
            .order_by(RequestAttachment.at, RequestAttachment.id)
        )
        return list((await self._session.scalars(query)).all())
