"""Who is staff, and in which role.

A person's role is, first match wins: the one a DPO gave with /role (stored), the one in
STAFF_ROLES, or GROUP_ADMIN_ROLE (DPO by default) for the admin group's administrators (fetched
from Telegram, cached, refreshed on membership changes) and for STAFF_IDS. Every check, allowed
or refused, is written to the audit log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

from bot.core.clock import Clock
from bot.core.i18n import Translator
from bot.core.roles import Need, Role, may, need_for
from bot.domain.admin_chat import AdminChat
from storage.repositories import Repositories

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)
CACHE_TTL = timedelta(minutes=10)


@dataclass(frozen=True)
class Decision:
    """The outcome of a staff check; true when allowed."""

    allowed: bool
    role: Role | None
    need: Need

    def __bool__(self) -> bool:
        return self.allowed

    def refusal(self, t: Translator, *, alert: bool = False) -> str:
        """What the refused person is told: staff learn which role the action needs."""
        suffix = "_alert" if alert else ""
        if self.role is None:
            return t(f"staff.refused{suffix}")
        needed = t("roles.or").join(t(f"roles.{r}") for r in Role if r in self.need.roles)
        return t(f"roles.refused{suffix}", needed=needed, role=t(f"roles.{self.role}"))


class Generation(Protocol):
    """A counter every instance sees: bumped when the cached list is stale everywhere."""

    async def current(self) -> int: ...

    async def bump(self) -> None: ...


class RedisGeneration:
    KEY = "privacy_desk:staff_generation"

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def current(self) -> int:
        return int(await self._redis.get(self.KEY) or 0)

    async def bump(self) -> None:
        await self._redis.incr(self.KEY)


class StaffDirectory:
    def __init__(
        self,
        admin_chat: AdminChat,
        staff_ids: list[int],
        clock: Clock,
        roles: dict[int, Role] | None = None,
        admin_role: Role | None = Role.DPO,
        shared: Generation | None = None,
    ) -> None:
        self._admin_chat = admin_chat
        self._extra = frozenset(staff_ids)
        self._clock = clock
        self._configured = dict(roles or {})
        self._admin_role = admin_role
        self._shared = shared
        self._admins: frozenset[int] | None = None
        self._fetched_at: datetime | None = None
        self._generation = 0

    async def invalidate(self) -> None:
        """Membership changed: fetch afresh here and (with Redis) in every other instance."""
        self._fetched_at = None
        if self._shared is not None:
            await self._shared.bump()

    async def _administrators(self, bot: Bot) -> frozenset[int]:
        now = self._clock.now()
        generation = 0 if self._shared is None else await self._shared.current()
        fresh = (
            self._fetched_at is not None
            and now - self._fetched_at < CACHE_TTL
            and generation == self._generation
        )
        if self._admins is not None and fresh:
            return self._admins
        try:
            members = await bot.get_chat_administrators(self._admin_chat.id)
        except TelegramAPIError as error:
            log.warning("Could not fetch the admin group's administrators: %s", error.message)
            return self._admins or frozenset()
        self._admins = frozenset(m.user.id for m in members if not m.user.is_bot)
        self._fetched_at = now
        self._generation = generation
        return self._admins

    async def role(self, bot: Bot, user_id: int, repo: Repositories) -> Role | None:
        stored = await repo.roles.get(user_id)
        if stored is not None:
            return Role(stored)
        if user_id in self._configured:
            return self._configured[user_id]
        if self._admin_role is not None and (
            user_id in self._extra or user_id in await self._administrators(bot)
        ):
            return self._admin_role
        return None

    async def known(self, bot: Bot, repo: Repositories) -> dict[int, Role | None]:
        """Everyone the directory knows of (STAFF_IDS, STAFF_ROLES, roles given with /role, the
        admin group's administrators) with their role now (the desk app's menu buttons). The
        administrators are asked afresh, outside the cache."""
        admins: set[int] = set()
        try:
            members = await bot.get_chat_administrators(self._admin_chat.id)
            admins = {m.user.id for m in members if not m.user.is_bot}
        except TelegramAPIError as error:
            log.warning("Could not fetch the admin group's administrators: %s", error.message)
        stored = {row.user_id: Role(row.role) for row in await repo.roles.every()}
        ids = set(self._extra) | set(self._configured) | admins | set(stored)
        known: dict[int, Role | None] = {}
        for user_id in sorted(ids):
            by_group = self._admin_role if user_id in self._extra | admins else None
            known[user_id] = stored.get(user_id) or self._configured.get(user_id) or by_group
        return known

    async def is_staff(self, bot: Bot, user_id: int, repo: Repositories) -> bool:
        return await self.role(bot, user_id, repo) is not None

    async def check(
        self,
        bot: Bot,
        user_id: int,
        action: str,
        subject: str | None,
        repo: Repositories,
        need: Need | None = None,
    ) -> Decision:
        """Whether `user_id` may do `action` (it needs `need`, by default `need_for(action)`);
        writes the attempt to the audit log either way."""
        need = need or need_for(action)
        role = await self.role(bot, user_id, repo)
        decision = Decision(may(role, need), role, need)
        await repo.audit.add(
            at=self._clock.now(),
            actor_id=user_id,
            action=action,
            subject=subject,
            allowed=decision.allowed,
        )
        # Committed here, before the handler or the refusal talks to Telegram: the audit log
        # is evidence, and an attempt stays recorded even when what follows fails.
        await repo.commit()
        if not decision.allowed:
            log.warning("Refused %s (needs %s) to user %s in role %s", action, need, user_id, role)
        return decision
