"""Personal data breaches: their record, the authority's deadline, telling the users."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialect import insert
from storage.models import Breach, BreachNotice, ConsentState, User
from storage.repositories.campaigns import Audience


class BreachRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, **values: Any) -> Breach:
        breach = Breach(**values)
        self._session.add(breach)
        await self._session.flush()
        return breach

    async def get(self, breach_id: int) -> Breach | None:
        return await self._session.get(Breach, breach_id, populate_existing=True)

    async def every(self) -> list[Breach]:
        return list((await self._session.scalars(select(Breach).order_by(Breach.id))).all())

    async def by_campaign(self, campaign_id: int) -> Breach | None:
        return await self._session.scalar(select(Breach).where(Breach.campaign_id == campaign_id))

    async def authority_open(self) -> list[Breach]:
        """Breaches whose authority notice is not yet marked sent, by deadline."""
        rows = await self._session.scalars(
            select(Breach)
            .where(Breach.authority_notified_at.is_(None))
            .order_by(Breach.authority_due_at, Breach.id)
        )
        return list(rows)

    async def notices(self, breach_id: int) -> dict[str, BreachNotice]:
        """The authorities notified of a breach so far: law id -> its mark."""
        rows = await self._session.scalars(
            select(BreachNotice).where(BreachNotice.breach_id == breach_id)
        )
        return {row.law: row for row in rows}

    async def lock_open(self, breach_id: int) -> bool:
        """The breach's row held to the end of the transaction, while an authority is still
        to be notified: two marks (of two laws) made at once see each other's. False when
        every authority is marked already."""
        result = await self._session.execute(
            update(Breach)
            .where(Breach.id == breach_id, Breach.authority_notified_at.is_(None))
            .values(authority_due_at=Breach.authority_due_at)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def add_notice(self, breach_id: int, law: str, staff_id: int, now: datetime) -> bool:
        """The authority of `law` notified; False if it was marked already."""
        statement = (
            insert(self._session, BreachNotice)
            .values(breach_id=breach_id, law=law, notified_at=now, notified_by=staff_id)
            .on_conflict_do_nothing(index_elements=["breach_id", "law"])
        )
        result = await self._session.execute(statement)
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def next_due(self, breach_id: int, due: datetime) -> None:
        """The earliest deadline of an authority still to be notified."""
        await self._session.execute(
            update(Breach).where(Breach.id == breach_id).values(authority_due_at=due)
        )

    async def mark_notified(self, breach_id: int, staff_id: int, now: datetime) -> bool:
        """Every authority notified: the breach leaves /due."""
        result = await self._session.execute(
            update(Breach)
            .where(Breach.id == breach_id, Breach.authority_notified_at.is_(None))
            .values(authority_notified_at=now, authority_notified_by=staff_id)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def claim_telling(self, breach_id: int, campaign_id: int, now: datetime) -> bool:
        result = await self._session.execute(
            update(Breach)
            .where(Breach.id == breach_id, Breach.users_told_at.is_(None))
            .values(users_told_at=now, campaign_id=campaign_id)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    def existing_users(self, ids: list[int] | None) -> Audience:
        query = select(User.id)
        if ids is not None:
            query = query.where(User.id.in_(ids))
        return query

    def consent_holders(self, purpose: str) -> Audience:
        return select(ConsentState.user_id).where(
            ConsentState.purpose == purpose, ConsentState.granted.is_(True)
        )
