"""Outer middlewares: one database session per update, the user and their language."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiogram import BaseMiddleware
from aiogram.fsm.middleware import FSMContextMiddleware
from aiogram.fsm.storage.base import BaseEventIsolation
from aiogram.types import Chat, TelegramObject
from aiogram.types import User as TgUser
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import Clock
from bot.core.i18n import locale_from_telegram, translator
from bot.core.policy import PolicyPack
from bot.domain.admin_chat import AdminChat
from bot.domain.consents import Consents
from bot.domain.onboarding import Onboarding
from bot.domain.requests.carrying import Connected
from bot.domain.requests.desk import Desk
from storage.crypto import reset_ring, use_ring
from storage.fsm import FsmScope, SqlStorage
from storage.models import User
from storage.repositories import Repositories
from storage.sealing import ring_of

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
# How long one user's lock in Redis outlives an instance that died holding it (bot.service.app).
LOCK_LEASE_SECONDS = 60

# Updates handled at the same time, each holding at most one database connection. SQLite has
# one writer at a time: more writers in flight only wait on each other's locks (and starve under
# the busy handler's polling), so further updates wait here, without holding a connection.
MAX_CONCURRENT_UPDATES = 8


class IsolationMiddleware(BaseMiddleware):
    """Serialises one user's updates in a chat for the whole update, commit included, across
    every instance sharing `isolation` (Redis) or within this process. aiogram's own FSM
    middleware would lock only around the handler, inside the session middleware: a second
    instance could then read the conversation state before the first one committed it. The
    dispatcher's FSM middleware therefore runs with isolation disabled (bot.service.app)."""

    def __init__(self, isolation: BaseEventIsolation, fsm: FSMContextMiddleware) -> None:
        self.isolation = isolation
        self._fsm = fsm

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        context = self._fsm.resolve_event_context(data["bot"], data)
        if context is None:
            return await handler(event, data)
        async with self.isolation.lock(context.key):
            return await handler(event, data)


class DbSessionMiddleware(BaseMiddleware):
    """One session per update: reads the sender and their conversation state in one statement,
    serves the FSM from that session, hands out repositories and services, commits once.

    This is the update's unit of work: the domain services flush and never commit; this commit
    (a rollback on an exception) ends it, and a commit that added outbox rows wakes the outbox
    (`storage.repositories.on_outbox_commit`).

    Registered before aiogram's FSM middleware (see `bot.service.app.create_dispatcher`), so the FSM
    state aiogram reads for every update comes from this session instead of a connection of
    its own."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        pack: PolicyPack,
        fsm: FSMContextMiddleware,
        storage: SqlStorage,
        connected: Connected | None = None,
    ) -> None:
        self._sessions = sessions
        self._connected = connected or Connected()
        self._clock = clock
        self._pack = pack
        self._fsm = fsm
        self._storage = storage
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_UPDATES)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        self._pack.advance(self._clock.now())  # an announced version's day: it applies at once
        async with self._slots, self._sessions() as session:
            # Data keys unwrapped for this update, shared with the FSM storage, then dropped.
            ring = use_ring(ring_of(session))
            scope = FsmScope(session)
            repo = Repositories(session)
            tg_user: TgUser | None = data.get("event_from_user")
            context = self._fsm.resolve_event_context(data["bot"], data)
            user: User | None = None
            if tg_user is not None and context is not None:
                fsm_key = self._storage.storage_key(context.key)
                user, scope.rows[fsm_key] = await repo.load_sender(tg_user.id, fsm_key)
            elif tg_user is not None:
                user = await repo.users.get(tg_user.id)
            data["user"] = user
            data["repo"] = repo
            data["onboarding"] = Onboarding(repo, self._clock, self._pack)
            data["consents"] = Consents(repo, self._clock, self._pack)
            data["desk"] = Desk(repo, self._clock, self._pack, self._connected)
            with scope.bind():
                try:
                    result = await handler(event, data)
                    await repo.commit()  # a no-op for SQLite when nothing was written
                except Exception:
                    await session.rollback()
                    raise
                finally:
                    reset_ring(ring)
            return result


SEEN_EVERY = timedelta(hours=12)  # last_seen_at is kept to this precision: few writes


class LocaleMiddleware(BaseMiddleware):
    """Notes that the sender was here (storage limitation) and picks the language they read
    (the sender was loaded, never created, above)."""

    def __init__(self, default_locale: str, staff_locale: str, clock: Clock) -> None:
        self._default = default_locale
        self._staff = staff_locale
        self._clock = clock

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        tg_user: TgUser | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        admin_chat: AdminChat = data["admin_chat"]
        user: User | None = data.get("user")
        now = self._clock.now()
        if user is not None and (user.last_seen_at is None or now - user.last_seen_at > SEEN_EVERY):
            user.last_seen_at = now  # committed with the update's session (twice a day at most)
        if chat is not None and chat.id == admin_chat.id:
            locale = self._staff
        elif user is not None:
            locale = user.language
        else:
            locale = locale_from_telegram(tg_user.language_code if tg_user else None, self._default)
        data["t"] = translator(locale)
        return await handler(event, data)
