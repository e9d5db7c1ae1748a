"""Legal representatives: single-use guardian links and the confirmations they lead to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import GuardianConfirmation, GuardianLink, User


class GuardianRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        # Whether a user represents anyone, when already known in this unit of work.
        self.represents: dict[int, bool] = {}

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

    async def open_link(self, minor_id: int, *, now: datetime) -> GuardianLink | None:
        """The newest link of the minor that is neither used nor expired."""
        result = await self._session.execute(
            select(GuardianLink)
            .where(
                GuardianLink.minor_id == minor_id,
                GuardianLink.used_at.is_(None),
                GuardianLink.expires_at > now,
            )
            .order_by(GuardianLink.created_at.desc(), GuardianLink.id.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def expire_open_links(self, minor_id: int, *, now: datetime) -> int:
        """Void the minor's open links; how many were open."""
        result = await self._session.execute(
            update(GuardianLink)
            .where(
                GuardianLink.minor_id == minor_id,
                GuardianLink.used_at.is_(None),
                GuardianLink.expires_at > now,
            )
            .values(expires_at=now)
        )
        return result.rowcount  # type: ignore[attr-defined,no-any-return]

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
        self.represents[guardian_id] = True
        return confirmation

    async def is_guardian(self, guardian_id: int, minor_id: int) -> bool:
        found = await self._session.scalar(
            select(GuardianConfirmation.id).where(
                GuardianConfirmation.guardian_id == guardian_id,
                GuardianConfirmation.minor_id == minor_id,
            )
        )
        return found is not None

    async def minors_of(self, guardian_id: int) -> list[User]:
        if self.represents.get(guardian_id) is False:
            return []  # the common case, known from the sender's load: no query
        rows = await self._session.scalars(
            select(User)
            .join(GuardianConfirmation, GuardianConfirmation.minor_id == User.id)
            .where(GuardianConfirmation.guardian_id == guardian_id)
            .distinct()
            .order_by(User.id)
        )
        return list(rows)

    async def confirmations_of(self, minor_id: int) -> list[GuardianConfirmation]:
        rows = await self._session.scalars(
            select(GuardianConfirmation)
            .where(GuardianConfirmation.minor_id == minor_id)
            .order_by(GuardianConfirmation.id)
        )
        return list(rows)

    async def confirmations_by(self, guardian_id: int) -> list[GuardianConfirmation]:
        rows = await self._session.scalars(
            select(GuardianConfirmation)
            .where(GuardianConfirmation.guardian_id == guardian_id)
            .order_by(GuardianConfirmation.id)
        )
        return list(rows)

    async def latest_confirmation(self, minor_id: int) -> GuardianConfirmation | None:
        result = await self._session.execute(
            select(GuardianConfirmation)
            .where(GuardianConfirmation.minor_id == minor_id)
            .order_by(GuardianConfirmation.confirmed_at.desc(), GuardianConfirmation.id.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()
