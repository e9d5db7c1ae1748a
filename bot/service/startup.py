"""Start-up talk with Telegram, before or beside serving users: the command menus and
profile texts in every language, the admin group check (and its staff menu), then the workers."""

from __future__ import annotations

import logging
from html import escape

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramMigrateToChat
from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats, BotCommandScopeChat

from bot.core.i18n import LOCALES, translator
from bot.core.policy import PolicyPack
from bot.delivery.systems.registry import tell_unconnected
from bot.domain.staff_reach import DELETE_RIGHT, probe, reason_of
from bot.service.app import App
from bot.telegram.desk_menu import set_desk_menus
from storage.enums import OutboxKind
from storage.repositories import Repositories

log = logging.getLogger(__name__)


USER_COMMANDS = (
    "start",
    "rights",
    "requests",
    "consents",
    "export",
    "privacy",
    "language",
    "settings",
    "help",
    "cancel",
)


async def set_commands(bot: Bot, default_locale: str) -> None:
    """The command menu in every language, and in the default language for everyone else."""
    scope = BotCommandScopeAllPrivateChats()
    for code in (*LOCALES, None):
        t = translator(code or default_locale)
        commands = [BotCommand(command=c, description=t(f"commands.{c}")) for c in USER_COMMANDS]
        await bot.set_my_commands(commands, scope=scope, language_code=code)


DESCRIPTION_LIMIT, SHORT_DESCRIPTION_LIMIT = 512, 120


def descriptions(pack: PolicyPack, locale: str) -> tuple[str, str]:
    """What the bot is, for whom and for which operator, within Telegram's limits."""
    t = translator(locale)
    name = pack.operator.legal_name.get(locale)
    description = t("about.description", operator=name)[:DESCRIPTION_LIMIT]
    short = t("about.short", operator=name)
    if len(short) > SHORT_DESCRIPTION_LIMIT:
        short = t("about.short_plain")
    return description, short


async def set_descriptions(bot: Bot, pack: PolicyPack, default_locale: str) -> None:
    """The profile texts in every language, and in the default language for everyone else."""
    for code in (*LOCALES, None):
        description, short = descriptions(pack, code or default_locale)
        await bot.set_my_description(description, language_code=code)
        await bot.set_my_short_description(short, language_code=code)


STAFF_COMMANDS = (
    "due",
    "register",
    "disclose",
    "campaign",
    "notify_policy",
    "consent",
    "templates",
    "ledger",
    "stats",
    "role",
)


async def set_staff_commands(bot: Bot, admin_chat_id: int, locale: str) -> None:
    t = translator(locale)
    commands = [BotCommand(command=c, description=t(f"commands.{c}")) for c in STAFF_COMMANDS]
    await bot.set_my_commands(commands, scope=BotCommandScopeChat(chat_id=admin_chat_id))


async def check_admin_chat(app: App) -> bool:
    """Log whether the bot can post in the admin group, and enter or leave the desk's "staff
    unreachable" state accordingly (bot.domain.staff_reach). Users are served either way."""
    bot, chat = app.bot, app.admin_chat
    try:
        reason = await probe(bot, chat.id)
    except TelegramMigrateToChat as migrated:
        async with app.sessions() as session:
            repo = Repositories(session)
            await chat.migrate(repo, migrated.migrate_to_chat_id)
            await repo.commit()  # at start-up, outside any update: this check owns its session
        return await check_admin_chat(app)
    except TelegramAPIError as error:
        log.warning(
            "Admin group %s: cannot reach it (%s); staff messages will wait until it can",
            chat.id,
            error.message,
        )
        reason = reason_of(error)
        if reason is not None:
            await _reached(app, reason)
        return False
    await _reached(app, reason)
    can_post = reason is None or reason == DELETE_RIGHT  # redactions wait, the rest goes out
    if can_post:
        log.info("Admin group %s: the bot can post there", chat.id)
        try:
            await set_staff_commands(bot, chat.id, app.settings.staff_locale)
        except TelegramAPIError as error:
            log.warning("Could not set the staff command menu: %s", error.message)
    if reason is not None:
        what = "can post but cannot delete" if can_post else "cannot post"
        log.warning(
            "Admin group %s: the bot %s there (%s); what needs it waits until it can",
            chat.id,
            what,
            reason,
        )
    return can_post


async def _reached(app: App, reason: str | None) -> None:
    """The desk's state from the start-up check: lost for `reason`, or found (None)."""
    async with app.sessions() as session:
        repo = Repositories(session)
        if reason is None:
            await app.reach.found(repo)
        else:
            await app.reach.lost(repo, reason)
        await repo.commit()  # at start-up, outside any update: this check owns its session


async def tell_missing_fields(app: App) -> bool:
    """Once per start: staff are told which fields the pack marks as not given (the policy
    does not give them; users see none of them), through the outbox to the admin group."""
    missing = app.pack.missing_fields()
    if not missing:
        return False
    t = translator(app.settings.staff_locale)
    fields = "\n".join(f"• <code>{escape(field)}</code>" for field in missing)
    text = t("staff.pack_not_given", pack=escape(app.pack.id), fields=fields)
    async with app.sessions() as session:
        repo = Repositories(session)
        await repo.outbox.add(kind=OutboxKind.TO_ADMIN, text=text, now=app.clock.now())
        await repo.commit()
    return True


async def set_staff_menus(app: App) -> int:
    """With the desk app (WEBAPP_URL): each staff member's menu button opens it (the default
    for those whose role is not desk work); how many Telegram took. Errors are logged."""
    if not app.settings.webapp_url:
        return 0
    async with app.sessions() as session:
        known = await app.staff.known(app.bot, Repositories(session))
    t = translator(app.settings.staff_locale)
    return await set_desk_menus(app.bot, known.items(), app.settings.webapp_url, t)


async def prepare(app: App) -> None:
    """Start-up talk with Telegram (who am I, command menus, profile texts, the admin group
    check), then the workers."""
    me = await app.bot.me()  # cached: long polling asks again
    log.info("Running as @%s (id %s) with policy pack %s", me.username, me.id, app.pack.id)
    try:
        await set_commands(app.bot, app.settings.default_locale)
    except TelegramAPIError as error:
        log.warning("Could not set the command menu: %s", error.message)
    try:
        await set_descriptions(app.bot, app.pack, app.settings.default_locale)
    except TelegramAPIError as error:
        log.warning("Could not set the bot's description: %s", error.message)
    await check_admin_chat(app)
    await set_staff_menus(app)
    await tell_missing_fields(app)
    await tell_unconnected(app.registry, app.sessions, app.clock, app.settings.staff_locale)
    await app.campaigns.resume(app.bot)
    await app.outbox.start(app.bot)
    await app.systems.start(app.bot)
    await app.reminders.start(app.bot)


async def prepare_beside(app: App) -> None:
    """`prepare` while long polling already serves users: none of it is needed to answer them.
    A failure is logged, not fatal (each step retries or reports on its own later)."""
    try:
        await prepare(app)
    except Exception:
        log.exception("Start-up work with Telegram failed")
