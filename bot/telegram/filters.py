"""Filters for the routers: magic filters resolved inline, the admin group, one callback
action."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from aiogram import F
from aiogram.filters import Filter
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, Chat, TelegramObject
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


class OnAction(Filter):
    """The buttons of one callback data class whose `action` is `action`:
    `Cb.filter(F.action == action)`, one handler per action, for the price of one unpack.

    aiogram tries a router's handlers in turn, and each `Cb.filter(...)` unpacks the button's
    data into a pydantic model before looking at the action: a router with a handler per action
    unpacked the same button once per handler tried. This compares the prefix and the action as
    text first and unpacks only the button it is for."""

    def __init__(self, data: type[CallbackData], action: StrEnum) -> None:
        self._separator = data.__separator__
        self._prefix = data.__prefix__
        self._place = 1 + list(data.model_fields).index("action")
        self._action = action.value
        self._filter = data.filter(F.action == action)

    async def __call__(self, query: CallbackQuery) -> bool | dict[str, Any]:
        parts = (query.data or "").split(self._separator)
        if parts[0] != self._prefix or len(parts) <= self._place:
            return False
        if parts[self._place] != self._action:
            return False
        return await self._filter(query)
