"""Outer middlewares: one database session per update, the user and their language."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Chat, TelegramObject
from aiogram.types import User as TgUser
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.admin_chat import AdminChat
from bot.clock import Clock
from bot.consents import Consents
from bot.i18n import locale_from_telegram, translator
from bot.onboarding import Onboarding
from bot.policy import PolicyPack
from bot.requests import Desk
from storage.crypto import reset_ring, use_ring
from storage.repositories import Repositories
from storage.sealing import ring_of

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

# Updates handled at the same time. Each holds a database connection and the FSM storage needs a
# second one briefly; without a bound, a burst of updates exhausts the pool and deadlocks
# (see storage.db.POOL_SIZE). Further updates wait here, without holding a connection.
MAX_CONCURRENT_UPDATES = 8


class DbSessionMiddleware(BaseMiddleware):
    """Opens one session per update, hands out repositories and services, and closes it."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, pack: PolicyPack
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._pack = pack
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_UPDATES)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        async with self._slots, self._sessions() as session:
            # Data keys unwrapped for this update, shared with the FSM storage, then dropped.
            ring = use_ring(ring_of(session))
            repo = Repositories(session)
            data["repo"] = repo
            data["onboarding"] = Onboarding(repo, self._clock, self._pack)
            data["consents"] = Consents(repo, self._clock, self._pack)
            data["desk"] = Desk(repo, self._clock, self._pack)
            try:
                result = await handler(event, data)
            except Exception:
                await session.rollback()
                raise
            finally:
                reset_ring(ring)
            await session.commit()
            return result


class LocaleMiddleware(BaseMiddleware):
    """Loads the sender (never creates them) and picks the language they read."""

    def __init__(self, default_locale: str, staff_locale: str) -> None:
        self._default = default_locale
        self._staff = staff_locale

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        tg_user: TgUser | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        admin_chat: AdminChat = data["admin_chat"]
        repo: Repositories = data["repo"]
        user = await repo.users.get(tg_user.id) if tg_user is not None else None
        if chat is not None and chat.id == admin_chat.id:
            locale = self._staff
        elif user is not None:
            locale = user.language
        else:
            locale = locale_from_telegram(tg_user.language_code if tg_user else None, self._default)
        data["user"] = user
        data["t"] = translator(locale)
        return await handler(event, data)
