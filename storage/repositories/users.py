"""People: their profile, the sender loaded with their conversation state in one statement,
idle accounts for the storage-limitation job, reachability."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Select, String, and_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialect import claimable
from storage.enums import RequestStatus
from storage.fsm import NO_ROW, FsmRow
from storage.models import ConsentState, DataKey, FsmRecord, GuardianConfirmation, Request, User
from storage.repositories.campaigns import Audience
from storage.sealing import OPEN_LATER, open_loaded, ring_of


def _load_sender() -> Select[Any]:
    """Built once: constructing this statement cost more than executing it."""
    probe = select(bindparam("uid", type_=BigInteger).label("uid")).subquery()
    represents = (
        select(GuardianConfirmation.id)
        .where(GuardianConfirmation.guardian_id == probe.c.uid)
        .exists()
    )
    return (
        select(
            User,
            FsmRecord.key,
            FsmRecord.state,
            FsmRecord.data,
            represents.label("represents"),
            DataKey.wrapped_by,
            DataKey.wrapped,
        )
        .select_from(probe)
        .outerjoin(User, User.id == probe.c.uid)
        .outerjoin(FsmRecord, FsmRecord.key == bindparam("fsm_key", type_=String))
        .outerjoin(DataKey, DataKey.owner_id == probe.c.uid)
    )


_LOAD_SENDER = _load_sender()


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, user_id: int | None) -> User | None:
        """The user, or None (also for a request's empty `user_id`: no bot user)."""
        if user_id is None:
            return None
        return await self._session.get(User, user_id)

    async def load(self, user_id: int, fsm_key: str) -> tuple[User | None, FsmRow, bool]:
        """In one statement: the sender's profile, their conversation state (FSM), and whether
        they represent anyone (so the common consent screen skips looking for minors)."""
        row = (
            await self._session.execute(
                _LOAD_SENDER,
                {"uid": user_id, "fsm_key": fsm_key},
                execution_options={OPEN_LATER: True},
            )
        ).one()
        # Their data key (or its absence) came in the same statement: no lookup of its own.
        ring_of(self._session.sync_session).remember(user_id, row.wrapped_by, row.wrapped)
        if row[0] is not None:
            await self._session.run_sync(open_loaded, row[0])
        fsm = NO_ROW if row.key is None else FsmRow(row.state, row.data)
        return row[0], fsm, bool(row.represents)

    @staticmethod
    def _idle(before: datetime, now: datetime, open_statuses: frozenset[str]) -> Any:
        busy = select(Request.id).where(
            Request.user_id == User.id,
            Request.status.in_(open_statuses)
            | ((Request.status == RequestStatus.BLOCKED) & (Request.hold_until > now)),
        )
        consenting = select(ConsentState.user_id).where(
            ConsentState.user_id == User.id, ConsentState.granted.is_(True)
        )
        return and_(
            func.coalesce(User.last_seen_at, User.created_at) < before,
            User.restricted_until.is_(None) | (User.restricted_until <= now),
            ~busy.exists(),
            ~consenting.exists(),
        )

    async def idle(
        self, before: datetime, now: datetime, open_statuses: frozenset[str]
    ) -> list[int]:
        """People last seen before `before` with nothing open, no legal hold, no restriction
        in force and no consent on: the storage-limitation job erases them."""
        rows = await self._session.scalars(
            select(User.id).where(self._idle(before, now, open_statuses)).order_by(User.id)
        )
        return list(rows)

    async def claim_idle(
        self, user_id: int, before: datetime, now: datetime, open_statuses: frozenset[str]
    ) -> bool:
        """Take an idle person for erasure in this transaction: still idle now (compare-and-set
        on what `idle` read: they may have come back since) and their row not being written
        by anyone else (PostgreSQL: FOR UPDATE SKIP LOCKED; one who is busy is left alone,
        not waited for)."""
        found = await self._session.scalar(
            claimable(
                select(User.id).where(User.id == user_id, self._idle(before, now, open_statuses))
            )
        )
        return found is not None

    def not_told_of(self, version: str) -> Audience:
        """Onboarded, reachable users who last saw an older policy version (a query)."""
        return select(User.id).where(
            User.notice_version.is_not(None),
            User.notice_version != version,
            User.blocked_bot.is_(False),
        )

    async def set_blocked(self, user_id: int, blocked: bool) -> bool:
        """Reachability from Telegram's own signal; True when it changed."""
        result = await self._session.execute(
            update(User)
            .where(User.id == user_id, User.blocked_bot.is_not(blocked))
            .values(blocked_bot=blocked)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def create(
        self,
        user_id: int,
        *,
        language: str,
        username: str | None,
        first_name: str | None,
        last_name: str | None,
        now: datetime,
    ) -> User:
        user = User(
            id=user_id,
            language=language,
            username=username,
            first_name=first_name,
            last_name=last_name,
            blocked_bot=False,
            created_at=now,
            last_seen_at=now,
        )
        self._session.add(user)
        await self._session.flush()
        return user
