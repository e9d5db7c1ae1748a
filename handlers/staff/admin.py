"""The admin group. Staff features arrive in later modules; this one keeps the chat's ID right,
the staff list fresh, and notices at once when the bot itself is removed, added back, promoted
or demoted there."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.types import ChatMemberUpdated, Message

from bot.core.i18n import Translator
from bot.domain.admin_chat import AdminChat
from bot.domain.staff import StaffDirectory
from bot.domain.staff_reach import StaffReach
from bot.telegram.desk_menu import set_desk_menu
from bot.telegram.filters import Magic
from storage.repositories import Repositories


async def group_upgraded(message: Message, admin_chat: AdminChat, repo: Repositories) -> None:
    """Telegram turned the admin group into a supergroup: its ID changed."""
    assert message.migrate_to_chat_id is not None
    await admin_chat.migrate(repo, message.migrate_to_chat_id)


async def membership_changed(
    event: ChatMemberUpdated,
    bot: Bot,
    t: Translator,
    staff: StaffDirectory,
    repo: Repositories,
    webapp_url: str | None,
) -> None:
    """Someone was promoted, demoted, joined or left: fetch the administrators afresh; their
    menu button follows their role now (the desk app for desk work, else the default)."""
    await staff.invalidate()
    person = event.new_chat_member.user
    if webapp_url and not person.is_bot:
        await repo.commit()  # nothing stays open while Telegram answers
        role = await staff.role(bot, person.id, repo)
        await set_desk_menu(bot, person.id, role, webapp_url, t)


async def bot_membership_changed(
    _: ChatMemberUpdated, bot: Bot, reach: StaffReach, repo: Repositories
) -> None:
    """The bot's own membership or rights changed: ask Telegram what they are now and enter or
    leave "staff unreachable" at once, without waiting for the outbox's backoff (back: every
    item to staff is due now, and the commit wakes the outbox)."""
    await reach.check(bot, repo)


def router() -> Router:
    r = Router(name="admin")
    r.message.register(group_upgraded, Magic(F.migrate_to_chat_id))
    r.chat_member.register(membership_changed)
    r.my_chat_member.register(bot_membership_changed)
    return r
