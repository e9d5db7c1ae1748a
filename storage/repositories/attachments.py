"""Files sent with a request (their rows; the copies go through the outbox)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import AttachmentStatus
from storage.models import RequestAttachment


class AttachmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, **values: Any) -> RequestAttachment:
        attachment = RequestAttachment(status=AttachmentStatus.PENDING, **values)
        self._session.add(attachment)
        await self._session.flush()
        return attachment

    async def get(self, attachment_id: int) -> RequestAttachment | None:
        return await self._session.get(RequestAttachment, attachment_id, populate_existing=True)

    async def of_request(self, request_id: int) -> list[RequestAttachment]:
        rows = await self._session.scalars(
            select(RequestAttachment)
            .where(RequestAttachment.request_id == request_id)
            .order_by(RequestAttachment.id)
        )
        return list(rows)
