"""Staff's answer templates."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AnswerTemplate


class TemplateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, *, name: str, texts: str, created_by: int, now: datetime) -> AnswerTemplate:
        template = AnswerTemplate(name=name, texts=texts, created_by=created_by, created_at=now)
        self._session.add(template)
        await self._session.flush()
        return template

    async def get(self, template_id: int) -> AnswerTemplate | None:
        return await self._session.get(AnswerTemplate, template_id)

    async def every(self) -> list[AnswerTemplate]:
        rows = await self._session.scalars(select(AnswerTemplate).order_by(AnswerTemplate.id))
        return list(rows)

    async def count(self) -> int:
        return int(await self._session.scalar(select(func.count(AnswerTemplate.id))) or 0)

    async def delete(self, template_id: int) -> bool:
        result = await self._session.execute(
            delete(AnswerTemplate).where(AnswerTemplate.id == template_id)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]
