"""Telegram's own signal that a user blocked or unblocked the bot (a private `my_chat_member`):
their reachability changes at once, so no campaign is attempted while they block it, and they are
reachable again without writing /start."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatMemberStatus
from aiogram.types import ChatMemberUpdated

from bot.telegram.filters import Magic
from storage.repositories import Repositories

GONE = frozenset({ChatMemberStatus.KICKED, ChatMemberStatus.LEFT})


async def reachability(event: ChatMemberUpdated, repo: Repositories) -> None:
    await repo.users.set_blocked(event.chat.id, event.new_chat_member.status in GONE)


def router() -> Router:
    r = Router(name="membership")
    r.my_chat_member.register(reachability, Magic(F.chat.type == "private"))
    return r
