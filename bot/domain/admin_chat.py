"""The staff group. Its ID changes when Telegram upgrades a group to a supergroup."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiogram.filters import Filter
from aiogram.types import Chat

from storage.repositories import Repositories

log = logging.getLogger(__name__)


@dataclass
class AdminChat:
    """The effective admin chat ID, shared by everything that talks to staff."""

    id: int
    configured_id: int

    @property
    def state_key(self) -> str:
        return f"admin_chat_id:{self.configured_id}"

    async def load(self, repo: Repositories) -> None:
        """Apply a migration recorded earlier for the configured ID."""
        stored = await repo.state.get(self.state_key)
        if stored is not None:
            self.id = int(stored)

    async def migrate(self, repo: Repositories, new_id: int) -> None:
        log.warning("Admin group migrated from %s to %s", self.id, new_id)
        self.id = new_id
        await repo.state.set(self.state_key, str(new_id))
        await repo.commit()


class InAdminChat(Filter):
    async def __call__(
        self, event: Any, admin_chat: AdminChat, event_chat: Chat | None = None
    ) -> bool:
        return event_chat is not None and event_chat.id == admin_chat.id
