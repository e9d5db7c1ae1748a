"""Rights requests: their rows, the messages said on them, compare-and-set decisions, legal
holds, the register, and the links of messages relayed about them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialect import claimable
from storage.dialect import insert as upsert
from storage.enums import STAFF_ASKS, RequestStatus
from storage.models import RelayLink, Request, RequestMessage, UTCDateTime

_HOLD_UNTIL = select(func.max(Request.hold_until)).where(
    Request.user_id == bindparam("uid"),
    Request.status == RequestStatus.BLOCKED,
    Request.hold_until > bindparam("now", type_=UTCDateTime),
)


class RequestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, **values: Any) -> Request:
        request = Request(**values)
        self._session.add(request)
        await self._session.flush()
        return request

    async def get(self, request_id: int) -> Request | None:
        return await self._session.get(Request, request_id, populate_existing=True)

    async def say(
        self, request_id: int, at: datetime, author: str, kind: str, text: str, staff_id: int | None
    ) -> None:
        self._session.add(
            RequestMessage(
                request_id=request_id, at=at, author=author, kind=kind, text=text, staff_id=staff_id
            )
        )
        await self._session.flush()

    async def messages(self, request_id: int) -> list[RequestMessage]:
        rows = await self._session.scalars(
            select(RequestMessage)
            .where(RequestMessage.request_id == request_id)
            .order_by(RequestMessage.id)
        )
        return list(rows)

    async def open_of_type(
        self, user_id: int, kind: str, statuses: frozenset[str]
    ) -> Request | None:
        return await self._session.scalar(
            select(Request)
            .where(Request.user_id == user_id, Request.type == kind, Request.status.in_(statuses))
            .order_by(Request.id)
            .limit(1)
        )

    async def said(self, request_id: int, kind: str) -> bool:
        """Whether a message of this kind was recorded on the request (e.g. an extension)."""
        found = await self._session.scalar(
            select(RequestMessage.id)
            .where(RequestMessage.request_id == request_id, RequestMessage.kind == kind)
            .limit(1)
        )
        return found is not None

    async def said_all(self, request_id: int, kind: str) -> list[RequestMessage]:
        """Every message of this kind on the request, oldest first (e.g. its clarifications)."""
        rows = await self._session.scalars(
            select(RequestMessage)
            .where(RequestMessage.request_id == request_id, RequestMessage.kind == kind)
            .order_by(RequestMessage.id)
        )
        return list(rows)

    async def last_staff_ask(self, request_id: int) -> RequestMessage | None:
        """The latest question or clarification staff asked on the request."""
        return await self._session.scalar(
            select(RequestMessage)
            .where(
                RequestMessage.request_id == request_id,
                RequestMessage.kind.in_(STAFF_ASKS),
            )
            .order_by(RequestMessage.id.desc())
            .limit(1)
        )

    async def of_user(self, user_id: int) -> list[Request]:
        rows = await self._session.scalars(
            select(Request).where(Request.user_id == user_id).order_by(Request.id.desc())
        )
        return list(rows)

    async def waiting_for(self, user_id: int) -> Request | None:
        """The user's most recent request that waits for their clarification."""
        return await self._session.scalar(
            select(Request)
            .where(Request.user_id == user_id, Request.status == RequestStatus.WAITING)
            .order_by(Request.id.desc())
            .limit(1)
        )

    async def open_by_due(self, statuses: frozenset[str]) -> list[Request]:
        rows = await self._session.scalars(
            select(Request).where(Request.status.in_(statuses)).order_by(Request.due_at, Request.id)
        )
        return list(rows)

    async def decide(
        self, request_id: int, expected: str, *, due_seen: datetime | None = None, **values: Any
    ) -> bool:
        """Compare-and-set: change the request only if its status is still `expected` (what the
        deciding staff member saw) and, with `due_seen`, its due date too (a change that keeps
        the status, like an extension); False when someone else decided first."""
        query = update(Request).where(Request.id == request_id, Request.status == expected)
        if due_seen is not None:
            query = query.where(Request.due_at == due_seen)
        result = await self._session.execute(
            query.values(**values).execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def claim_release(self, request_id: int, now: datetime) -> bool:
        """Take a legal hold whose date has come for this worker alone (its erasure follows in
        the same transaction); False when another worker took it, or is writing the request
        (PostgreSQL: FOR UPDATE SKIP LOCKED, never waited for; the next check comes back).
        Compare-and-set: the hold must still be in force and due, whatever the caller read."""
        due = (Request.status == RequestStatus.BLOCKED, Request.hold_until <= now)
        mine = await self._session.scalar(
            claimable(select(Request.id).where(Request.id == request_id, *due))
        )
        if mine is None:
            return False
        result = await self._session.execute(
            update(Request)
            .where(Request.id == request_id, *due)
            .values(status=RequestStatus.DONE, closed_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def count_undelivered(self, request_id: int) -> None:
        await self._session.execute(
            update(Request)
            .where(Request.id == request_id)
            .values(undelivered=Request.undelivered + 1)
            .execution_options(synchronize_session=False)
        )

    async def hold_until(self, user_id: int, now: datetime) -> datetime | None:
        return await self._session.scalar(_HOLD_UNTIL, {"uid": user_id, "now": now})

    async def expired_holds(self, now: datetime) -> list[Request]:
        rows = await self._session.scalars(
            select(Request)
            .where(Request.status == RequestStatus.BLOCKED, Request.hold_until <= now)
            .order_by(Request.id)
        )
        return list(rows)

    async def count(self) -> int:
        return int(await self._session.scalar(select(func.count(Request.id))) or 0)

    async def register(self, *, batch: int = 500) -> AsyncIterator[tuple[Any, ...]]:
        """Every request's register columns (none of them personal, so nothing is decrypted),
        oldest first, fetched `batch` rows at a time: a register of any size streams."""
        query = (
            select(
                Request.id,
                Request.type,
                Request.user_id,
                Request.received_at,
                Request.due_at,
                Request.status,
                Request.closed_at,
                Request.handled_by,
            )
            .order_by(Request.id)
            .execution_options(yield_per=batch)
        )
        async for row in await self._session.stream(query):
            yield tuple(row)

    async def link(self, chat_id: int, message_id: int, request_id: int) -> None:
        await self._session.execute(
            upsert(self._session, RelayLink)
            .values(chat_id=chat_id, message_id=message_id, request_id=request_id)
            .on_conflict_do_nothing()
        )

    async def relayed_in(self, chat_id: int, user_id: int) -> list[int]:
        """Messages in `chat_id` linked to the user's requests, other than their cards: what
        was relayed there (texts and file copies)."""
        rows = await self._session.scalars(
            select(RelayLink.message_id)
            .join(Request, Request.id == RelayLink.request_id)
            .where(
                RelayLink.chat_id == chat_id,
                Request.user_id == user_id,
                (Request.card_message_id.is_(None))
                | (Request.card_message_id != RelayLink.message_id),
            )
            .order_by(RelayLink.message_id)
        )
        return list(rows)

    async def by_message(self, chat_id: int, message_id: int) -> Request | None:
        return await self._session.scalar(
            select(Request)
            .join(RelayLink, RelayLink.request_id == Request.id)
            .where(RelayLink.chat_id == chat_id, RelayLink.message_id == message_id)
            .execution_options(populate_existing=True)
        )
