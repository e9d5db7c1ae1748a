"""Filters for the routers: magic filters resolved inline, and the admin group."""

from __future__ import annotations

from typing import Any

from aiogram.filters import Filter
from aiogram.types import Chat, TelegramObject
from magic_filter import MagicFilter

from bot.domain.admin_chat import AdminChat


class Magic(Filter):
    """A magic filter (`F.text`, `F.chat.type == "private"`) checked in the event loop.

    aiogram runs a bare magic filter, a synchronous callable, through `asyncio.to_thread`: a
    worker-thread round trip for every check of every update (about three per update). This
    resolves it the same way, inline."""

    def __init__(self, rule: MagicFilter) -> None:
        self.rule = rule

    async def __call__(self, event: TelegramObject) -> Any:
        return self.rule.resolve(event)


class InAdminChat(Filter):
    """The event comes from the admin group (its effective ID: it changes on a migration)."""

    async def __call__(
        self, event: Any, admin_chat: AdminChat, event_chat: Chat | None = None
    ) -> bool:
        return event_chat is not None and event_chat.id == admin_chat.id
