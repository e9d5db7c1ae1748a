"""Disclosures: to whom a person's data was given (GDPR art. 19, 15(1)(c))."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Disclosure


class DisclosureRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, **values: Any) -> Disclosure:
        disclosure = Disclosure(**values)
        self._session.add(disclosure)
        await self._session.flush()
        return disclosure

    async def of_user(self, user_id: int, since: datetime | None = None) -> list[Disclosure]:
        query = select(Disclosure).where(Disclosure.user_id == user_id)
        if since is not None:
            query = query.where(Disclosure.at >= since)
        return list((await self._session.scalars(query.order_by(Disclosure.at))).all())
