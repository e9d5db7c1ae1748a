"""Who is staff: the admin group's administrators (fetched from Telegram, cached, refreshed on
membership changes) plus STAFF_IDS. Every refusal is written to the audit log."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

from bot.admin_chat import AdminChat
from bot.clock import Clock
from storage.repositories import Repositories

log = logging.getLogger(__name__)
CACHE_TTL = timedelta(minutes=10)


class StaffDirectory:
    def __init__(self, admin_chat: AdminChat, staff_ids: list[int], clock: Clock) -> None:
        self._admin_chat = admin_chat
        self._extra = frozenset(staff_ids)
        self._clock = clock
        self._admins: frozenset[int] | None = None
        self._fetched_at: datetime | None = None

    def invalidate(self) -> None:
        self._fetched_at = None

    async def _administrators(self, bot: Bot) -> frozenset[int]:
        now = self._clock.now()
        fresh = self._fetched_at is not None and now - self._fetched_at < CACHE_TTL
        if self._admins is not None and fresh:
            return self._admins
        try:
            members = await bot.get_chat_administrators(self._admin_chat.id)
        except TelegramAPIError as error:
            log.warning("Could not fetch the admin group's administrators: %s", error.message)
            return self._admins or frozenset()
        self._admins = frozenset(m.user.id for m in members if not m.user.is_bot)
        self._fetched_at = now
        return self._admins

    async def is_staff(self, bot: Bot, user_id: int) -> bool:
        return user_id in self._extra or user_id in await self._administrators(bot)

    async def check(
        self, bot: Bot, user_id: int, action: str, subject: str | None, repo: Repositories
    ) -> bool:
        """True for staff; writes the attempt to the audit log either way."""
        allowed = await self.is_staff(bot, user_id)
        await repo.audit.add(
            at=self._clock.now(), actor_id=user_id, action=action, subject=subject, allowed=allowed
        )
        await repo.commit()
        if not allowed:
            log.warning("Refused %s by non-staff user %s", action, user_id)
        return allowed
