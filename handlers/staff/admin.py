"""The admin group. Staff features arrive in later modules; this one keeps the chat's ID right."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import ChatMemberUpdated, Message

from bot.domain.admin_chat import AdminChat
from bot.domain.staff import StaffDirectory
from bot.telegram.filters import Magic
from storage.repositories import Repositories


async def group_upgraded(message: Message, admin_chat: AdminChat, repo: Repositories) -> None:
    """Telegram turned the admin group into a supergroup: its ID changed."""
    assert message.migrate_to_chat_id is not None
    await admin_chat.migrate(repo, message.migrate_to_chat_id)


async def membership_changed(_: ChatMemberUpdated, staff: StaffDirectory) -> None:
    """Someone was promoted, demoted, joined or left: fetch the administrators afresh."""
    await staff.invalidate()


def router() -> Router:
    r = Router(name="admin")
    r.message.register(group_upgraded, Magic(F.migrate_to_chat_id))
    r.chat_member.register(membership_changed)
    return r
