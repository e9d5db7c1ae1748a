"""Repositories: the only place that speaks SQL. One `Repositories` per database session."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import BotState, GuardianConfirmation, GuardianLink, User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, user_id: int) -> User | None:
        return await self._session.get(User, user_id)

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
        )
        self._session.add(user)
        await self._session.flush()
        return user


class GuardianRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_link(
        self, *, token_hash: str, minor_id: int, created_at: datetime, expires_at: datetime
    ) -> GuardianLink:
        link = GuardianLink(
            token_hash=token_hash, minor_id=minor_id, created_at=created_at, expires_at=expires_at
        )
        self._session.add(link)
        await self._session.flush()
        return link

    async def link_by_id(self, link_id: int) -> GuardianLink | None:
        return await self._session.get(GuardianLink, link_id)

    async def expire_open_links(self, minor_id: int, *, now: datetime) -> None:
        await self._session.execute(
            update(GuardianLink)
            .where(
                GuardianLink.minor_id == minor_id,
                GuardianLink.used_at.is_(None),
                GuardianLink.expires_at > now,
            )
            .values(expires_at=now)
        )

    async def link_by_hash(self, token_hash: str) -> GuardianLink | None:
        result = await self._session.execute(
            select(GuardianLink).where(GuardianLink.token_hash == token_hash)
        )
        return result.scalar_one_or_none()

    async def claim_link(self, link_id: int, *, used_by: int, now: datetime) -> bool:
        """Mark a link used; False when someone used it first (single use under races)."""
        result = await self._session.execute(
            update(GuardianLink)
            .where(GuardianLink.id == link_id, GuardianLink.used_at.is_(None))
            .values(used_at=now, used_by=used_by)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def add_confirmation(
        self, *, minor_id: int, guardian_id: int, link_id: int, now: datetime, policy_version: str
    ) -> GuardianConfirmation:
        confirmation = GuardianConfirmation(
            minor_id=minor_id,
            guardian_id=guardian_id,
            link_id=link_id,
            confirmed_at=now,
            policy_version=policy_version,
        )
        self._session.add(confirmation)
        await self._session.flush()
        return confirmation

    async def latest_confirmation(self, minor_id: int) -> GuardianConfirmation | None:
        result = await self._session.execute(
            select(GuardianConfirmation)
            .where(GuardianConfirmation.minor_id == minor_id)
            .order_by(GuardianConfirmation.confirmed_at.desc(), GuardianConfirmation.id.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()


class BotStateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, key: str) -> str | None:
        row = await self._session.get(BotState, key)
        return None if row is None else row.value

    async def set(self, key: str, value: str) -> None:
        await self._session.merge(BotState(key=key, value=value))


class Repositories:
    """Everything a handler may touch in the database, over one session (one per update)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.users = UserRepository(session)
        self.guardians = GuardianRepository(session)
        self.state = BotStateRepository(session)

    async def commit(self) -> None:
        await self.session.commit()
