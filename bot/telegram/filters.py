"""Filters for the routers."""

from __future__ import annotations

from typing import Any

from aiogram.filters import Filter
from aiogram.types import TelegramObject
from magic_filter import MagicFilter


class Magic(Filter):
    """A magic filter (`F.text`, `F.chat.type == "private"`) checked in the event loop.

    aiogram runs a bare magic filter, a synchronous callable, through `asyncio.to_thread`: a
    worker-thread round trip for every check of every update (about three per update). This
    resolves it the same way, inline."""

    def __init__(self, rule: MagicFilter) -> None:
        self.rule = rule

    async def __call__(self, event: TelegramObject) -> Any:
        return self.rule.resolve(event)
