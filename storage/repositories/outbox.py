"""The outbox's rows: adding items in their lane, claiming the head of a lane, recovering
items whose worker died mid-call. The worker that sends them is `bot.delivery.outbox`."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.dialect import claimable
from storage.enums import (
    CARD_KINDS,
    MESSAGE_KINDS,
    OUTBOX_UNFINISHED,
    TO_USER_KINDS,
    OutboxKind,
    OutboxStatus,
)
from storage.models import OutboxItem, UTCDateTime


def outbox_lane(
    kind: str, user_id: int | None, request_id: int | None, message_id: int | None
) -> str:
    """The lane an outbox item keeps its order in: one user's chat, one request's card, one
    message to redact or delete, the owners' messages, or the admin group's other messages."""
    if kind == OutboxKind.TO_OWNER:
        return "owners"
    if kind in TO_USER_KINDS:
        return f"chat:{user_id}"
    if kind in CARD_KINDS:
        return f"card:{request_id}"
    if kind in MESSAGE_KINDS:
        return f"message:{message_id}"
    return "staff"


def _heads_its_lane(item: Any) -> ColumnElement[bool]:
    """`item` (the outbox or an alias of it) may be claimed now: `pending`, due, and heading its
    lane, i.e. no other item of the lane is being sent and none before it waits (an item
    retried later holds its lane until it is done)."""
    other = aliased(OutboxItem)
    return and_(
        item.status == OutboxStatus.PENDING,
        item.next_attempt_at <= bindparam("now", type_=UTCDateTime),
        ~exists().where(
            other.lane == item.lane,
            other.id != item.id,
            other.status.in_(OUTBOX_UNFINISHED),  # the lane's unfinished items (an index)
            (other.status == OutboxStatus.SENDING) | (other.id < item.id),
        ),
    )


# The outbox claim, built once: the oldest claimable item (read from an alias, so it is not
# correlated with the UPDATE around it), and the same condition again as the compare-and-set.
_CANDIDATE = aliased(OutboxItem)
_OLDEST_HEAD = (
    select(_CANDIDATE.id).where(_heads_its_lane(_CANDIDATE)).order_by(_CANDIDATE.id).limit(1)
)
_STILL_HEAD = _heads_its_lane(OutboxItem)


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self.added = False  # rows added since the last commit: the commit wakes the outbox

    async def add(
        self,
        *,
        kind: str,
        now: datetime,
        user_id: int | None = None,
        request_id: int | None = None,
        text: str | None = None,
        chat_id: int | None = None,
        message_id: int | None = None,
        confirm_message_id: int | None = None,
    ) -> OutboxItem:
        item = OutboxItem(
            created_at=now,
            kind=kind,
            user_id=user_id,
            request_id=request_id,
            text=text,
            chat_id=chat_id,
            message_id=message_id,
            confirm_message_id=confirm_message_id,
            lane=outbox_lane(kind, user_id, request_id, message_id),
            status=OutboxStatus.PENDING,
            attempts=0,
            repeated=False,
            next_attempt_at=now,
        )
        self._session.add(item)
        self.added = True
        await self._session.flush()
        return item

    async def unfinished(self, limit: int = 500) -> list[OutboxItem]:
        """Pending items and those another worker is sending (they hold their lane), oldest
        first."""
        rows = await self._session.scalars(
            select(OutboxItem)
            .where(OutboxItem.status.in_(OUTBOX_UNFINISHED))
            .order_by(OutboxItem.id)
            .limit(limit)
        )
        return list(rows)

    async def get(self, item_id: int) -> OutboxItem | None:
        return await self._session.get(OutboxItem, item_id, populate_existing=True)

    async def any_due(self, now: datetime) -> bool:
        """Whether an item waits to be sent: read-only, so an idle worker's pass opens no write
        transaction (on SQLite the claim's UPDATE takes the write lock even when it matches
        nothing, and restarts the WAL an erasure's compaction has just emptied)."""
        due = exists().where(
            OutboxItem.status == OutboxStatus.PENDING, OutboxItem.next_attempt_at <= now
        )
        return bool(await self._session.scalar(select(due)))

    async def claim(
        self,
        now: datetime,
        *,
        skip_lanes: Collection[str] = (),
        skip_kinds: Collection[str] = (),
    ) -> OutboxItem | None:
        """Take the oldest due item that heads its lane (none of `skip_lanes`, of none of
        `skip_kinds`) for this worker alone, `pending` -> `sending`; None when there is none.

        One statement: the candidate is read with FOR UPDATE SKIP LOCKED on PostgreSQL
        (storage.dialect.claimable), so an item another instance is claiming is passed over,
        never waited for, and the UPDATE around it is the compare-and-set (still `pending`,
        due, heading its lane) that SQLite, one writer at a time, decides by alone. An item
        heads its lane when no other item of the lane is being sent and none before it waits:
        a lane's items go one at a time, in order, whichever instance claims them. No advisory
        lock per lane is needed for that: the only item of a lane any claim can take is its
        head, and while one claimer holds the head's row lock another either skips that row
        (and finds no other head in the lane: the locked one is still `pending` to it) or,
        after the claim's commit, sees it `sending`."""
        query = _OLDEST_HEAD
        if skip_lanes:
            query = query.where(_CANDIDATE.lane.not_in(list(skip_lanes)))
        if skip_kinds:
            query = query.where(_CANDIDATE.kind.not_in(list(skip_kinds)))
        item_id = await self._session.scalar(
            update(OutboxItem)
            .where(OutboxItem.id == claimable(query).scalar_subquery(), _STILL_HEAD)
            .values(status=OutboxStatus.SENDING, attempts=OutboxItem.attempts + 1, claimed_at=now)
            .returning(OutboxItem.id)
            .execution_options(synchronize_session=False),
            {"now": now},
        )
        return None if item_id is None else await self.get(item_id)

    async def postpone(self, kinds: Collection[str], until: datetime) -> int:
        """Waiting items of `kinds` due before `until` wait until then (the admin group cannot
        be reached: one try at `until` decides for all of them, in their order)."""
        return await self._reschedule(kinds, until, lambda item: item.next_attempt_at < until)

    async def waiting_before(
        self, kinds: Collection[str], item_id: int, now: datetime
    ) -> datetime | None:
        """When the first of the items of `kinds` queued before `item_id` that wait (pending,
        not due yet) is tried next; None when none waits."""
        return await self._session.scalar(
            select(func.min(OutboxItem.next_attempt_at)).where(
                OutboxItem.status == OutboxStatus.PENDING,
                OutboxItem.kind.in_(list(kinds)),
                OutboxItem.id < item_id,
                OutboxItem.next_attempt_at > now,
            )
        )

    async def hasten(self, kinds: Collection[str], now: datetime) -> int:
        """Waiting items of `kinds` are due now (the admin group is back); the commit wakes the
        outbox when there were any."""
        count = await self._reschedule(kinds, now, lambda item: item.next_attempt_at > now)
        self.added = self.added or count > 0
        return count

    async def _reschedule(
        self,
        kinds: Collection[str],
        when: datetime,
        due: Callable[[Any], ColumnElement[bool]],
    ) -> int:
        """Waiting items of `kinds` (and `due`, a condition on the outbox or an alias of it)
        are next tried at `when`. Rows another instance is claiming or writing are passed over,
        never waited for, so two instances rescheduling at once cannot deadlock: that instance
        decides for its item."""

        def waiting(item: Any) -> tuple[ColumnElement[bool], ...]:
            return item.status == OutboxStatus.PENDING, item.kind.in_(list(kinds)), due(item)

        found = aliased(OutboxItem)  # not correlated with the UPDATE around it
        result = await self._session.execute(
            update(OutboxItem)
            .where(
                OutboxItem.id.in_(claimable(select(found.id).where(*waiting(found)))),
                *waiting(OutboxItem),
            )
            .values(next_attempt_at=when)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def recover(self, before: datetime) -> int:
        """Items left `sending` by a worker that died mid-call (claimed before `before`): maybe
        delivered, so they go out again marked as a possible repeat (at least once). Rows
        another instance is writing right now (the item's outcome) are skipped, not waited
        for; the compare-and-set on `sending` leaves an item that ended meanwhile alone."""

        def stale(item: Any) -> tuple[ColumnElement[bool], ...]:
            return item.status == OutboxStatus.SENDING, item.claimed_at < before

        found = aliased(OutboxItem)  # not correlated with the UPDATE around it
        result = await self._session.execute(
            update(OutboxItem)
            .where(
                OutboxItem.id.in_(claimable(select(found.id).where(*stale(found)))),
                *stale(OutboxItem),
            )
            .values(status=OutboxStatus.PENDING, repeated=True)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def for_user(self, user_id: int) -> list[OutboxItem]:
        rows = await self._session.scalars(
            select(OutboxItem).where(OutboxItem.user_id == user_id).order_by(OutboxItem.id)
        )
        return list(rows)
