"""Composition: settings + pack + clock -> database, dispatcher, bot. Used by `python -m bot`
and by the tests, so the tests run exactly the production wiring."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseEventIsolation
from aiogram.fsm.storage.memory import DisabledEventIsolation, SimpleEventIsolation
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core import i18n
from bot.core.clock import Clock, SystemClock
from bot.core.errors import ConfigError
from bot.core.policy import PolicyPack
from bot.delivery.campaigns import CampaignRunner
from bot.delivery.outbox import GroupPace, Outbox
from bot.delivery.scheduler import Reminders
from bot.delivery.systems.callback import WebhookCallbacks, webhook_callbacks
from bot.delivery.systems.registry import Factory, Registry
from bot.delivery.systems.worker import SystemsWorker
from bot.domain.admin_chat import AdminChat
from bot.domain.erasure import ErasureService
from bot.domain.requests.carrying import Connected
from bot.domain.requests.finishing import Finisher
from bot.domain.staff import RedisGeneration, StaffDirectory
from bot.domain.staff_reach import StaffReach
from bot.service.config import Settings
from bot.service.metrics import Metrics
from bot.service.warmup import keep_response_models
from bot.telegram.middlewares import (
    LOCK_LEASE_SECONDS,
    DbSessionMiddleware,
    IsolationMiddleware,
    LocaleMiddleware,
)
from handlers import get_routers
from storage import chain, migrate
from storage.crypto import KeyProblem, MasterKeys, check_master
from storage.db import create_engine, session_factory
from storage.fsm import SqlStorage
from storage.repositories import Repositories, on_jobs_commit, on_outbox_commit

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    pack: PolicyPack
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    admin_chat: AdminChat
    dispatcher: Dispatcher
    bot: Bot
    campaigns: CampaignRunner
    staff: StaffDirectory
    outbox: Outbox
    reminders: Reminders
    erasure: ErasureService
    metrics: Metrics
    reach: StaffReach
    registry: Registry
    systems: SystemsWorker
    redis: Redis | None = None
    callbacks: WebhookCallbacks | None = None  # the webhook systems' callbacks (bot.service.web)

    async def close(self) -> None:
        await self.reminders.stop()
        await self.systems.stop()
        await self.outbox.stop()
        await self.campaigns.stop()
        await self.bot.session.close()
        await self.dispatcher.storage.close()
        await self.registry.close()
        await self.engine.dispose()
        if self.redis is not None:
            await self.redis.aclose()


def create_bot(settings: Settings) -> Bot:
    keep_response_models()
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    return Bot(
        settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


def create_dispatcher(
    engine: AsyncEngine,
    master: MasterKeys,
    settings: Settings,
    pack: PolicyPack,
    clock: Clock,
    sessions: async_sessionmaker[AsyncSession],
    admin_chat: AdminChat,
    campaigns: CampaignRunner,
    staff: StaffDirectory,
    outbox: Outbox,
    erasure: ErasureService,
    metrics: Metrics,
    isolation: BaseEventIsolation,
    reach: StaffReach,
    connected: Connected | None = None,
) -> Dispatcher:
    storage = SqlStorage(engine, master)
    dispatcher = Dispatcher(
        storage=storage,
        events_isolation=DisabledEventIsolation(),  # IsolationMiddleware locks instead
        settings=settings,
        pack=pack,
        clock=clock,
        admin_chat=admin_chat,
        campaigns=campaigns,
        staff=staff,
        outbox=outbox,
        erasure=erasure,
        reach=reach,
        webapp_url=settings.webapp_url,  # the desk app's menu buttons (bot.telegram.desk_menu)
    )
    dispatcher.update.outer_middleware(metrics.middleware())
    dispatcher.update.outer_middleware(IsolationMiddleware(isolation, dispatcher.fsm))
    # The session middleware goes before aiogram's FSM middleware: the FSM reads its state
    # through the update's session (one statement with the sender's profile).
    dispatcher.update.outer_middleware.unregister(dispatcher.fsm)
    dispatcher.update.outer_middleware(
        DbSessionMiddleware(sessions, clock, pack, dispatcher.fsm, storage, connected)
    )
    dispatcher.update.outer_middleware(dispatcher.fsm)
    dispatcher.update.outer_middleware(
        LocaleMiddleware(settings.default_locale, settings.staff_locale, clock)
    )
    dispatcher.include_routers(*get_routers())
    return dispatcher


def report_missing_keys() -> None:
    """Once at start: which keys each language lacks (they are read in the default language)."""
    for locale, keys in i18n.missing_keys().items():
        shown = ", ".join(keys[:20]) + (", …" if len(keys) > 20 else "")
        log.warning(
            "Locale %s lacks %s keys (falls back to %s): %s",
            locale,
            len(keys),
            i18n.fallback(),
            shown,
        )


async def connect_systems(
    settings: Settings, pack: PolicyPack, factory: Factory | None
) -> Registry:
    """The connectors of the pack's systems whose environment variables are set; each one's
    check runs now, and any problem stops the start (ConfigError, one line per problem)."""
    registry = Registry.build(
        pack,
        os.environ,
        pseudonym_secret=settings.pseudonym_secret.get_secret_value(),
        callback_url=getattr(settings, "systems_callback_url", None),
        factory=factory,
    )
    problems = await registry.problems()
    if problems:
        await registry.close()
        lines = "\n".join(f"  {line}" for line in problems)
        raise ConfigError(f"Configuration error: the operator's systems do not validate:\n{lines}")
    return registry


async def build_app(
    settings: Settings,
    pack: PolicyPack,
    clock: Clock | None = None,
    bot: Bot | None = None,
    *,
    factory: Factory | None = None,
) -> App:
    """Open (and migrate) the database and wire the dispatcher. Talks to nobody yet. `bot`:
    one already made (and used) by the caller; closed with the app. `factory`: how each kind
    of system is connected (tests pass fakes; by default the sql and webhook connectors)."""
    clock = clock or SystemClock()
    i18n.set_fallback(settings.default_locale)
    report_missing_keys()
    # The app's own copy (it advances in place at an announced version's day, see
    # PolicyPack.advance), already current if that day has come.
    pack = pack.in_force(clock.now().astimezone(pack.zone).date()).model_copy()
    master = settings.master_keys()
    registry = await connect_systems(settings, pack, factory)
    engine = create_engine(settings.database_url, settings.sqlite_path())
    try:
        await migrate.upgrade(engine, master)
        await check_master(engine, master)
    except KeyProblem as problem:
        await engine.dispose()
        await registry.close()
        raise ConfigError(f"Configuration error: {problem}") from None
    sessions = session_factory(engine, master, settings.chain_key())
    admin_chat = AdminChat(id=settings.admin_chat_id, configured_id=settings.admin_chat_id)
    async with sessions() as session:
        if await chain.backfill(session):  # rows written before the chain existed
            await session.commit()
        await admin_chat.load(Repositories(session))
    campaigns = CampaignRunner(
        sessions, pack, clock, admin_chat, settings.staff_locale, settings.broadcast_rate
    )
    # With Redis, one user's updates are serialised across instances and every instance learns
    # when the admin group's membership changed. The FSM stays in the SQL database, so an
    # erasure remains one transaction.
    redis: Redis | None = None
    isolation: BaseEventIsolation = SimpleEventIsolation()
    if settings.redis_url:
        from bot.service.shared_redis import connect  # the client is imported only when configured

        redis, isolation = connect(settings.redis_url, LOCK_LEASE_SECONDS)
    shared = None if redis is None else RedisGeneration(redis)
    staff = StaffDirectory(
        admin_chat, settings.staff_ids, clock, settings.staff_roles, settings.admin_role, shared
    )
    t_staff = i18n.translator(settings.staff_locale)
    reach = StaffReach(clock, settings.owner_ids, t_staff, pack.zone, admin_chat)
    pace = GroupPace(settings.staff_rate)
    outbox = Outbox(
        sessions,
        clock,
        pack,
        admin_chat,
        settings.staff_locale,
        reach,
        pace,
        settings.webapp_short_name,
    )
    on_outbox_commit(sessions, outbox.wake)  # a commit that added outbox rows wakes the worker
    erasure = ErasureService(
        sessions,
        clock,
        pack,
        settings.pseudonym_secret.get_secret_value(),
        admin_chat,
        settings.staff_locale,
        engine,
    )
    await erasure.compact_if_pending()  # e.g. after 0006 sealed a plaintext database in place
    metrics = Metrics(sessions, clock, timedelta(seconds=settings.outbox_stuck_after))
    finisher = Finisher(
        sessions,
        clock,
        pack,
        erasure,
        engine,
        settings.pseudonym_secret.get_secret_value(),
        registry.connected,
    )
    systems = SystemsWorker(sessions, clock, pack, registry, finisher, settings.staff_locale)
    on_jobs_commit(sessions, systems.wake)  # a commit that added jobs wakes the worker
    dispatcher = create_dispatcher(
        engine,
        master,
        settings,
        pack,
        clock,
        sessions,
        admin_chat,
        campaigns,
        staff,
        outbox,
        erasure,
        metrics,
        isolation,
        reach,
        registry.connected,
    )
    return App(
        settings,
        pack,
        clock,
        engine,
        sessions,
        admin_chat,
        dispatcher,
        bot or create_bot(settings),
        campaigns,
        staff,
        outbox,
        Reminders(
            sessions,
            clock,
            pack,
            erasure,
            settings.staff_locale,
            settings.reminder_time,
            campaigns,
            registry.connected,
            finisher,
        ),
        erasure,
        metrics,
        reach,
        registry,
        systems,
        redis,
        webhook_callbacks(sessions, clock, pack.systems, os.environ),
    )
