"""The staff group. Its ID changes when Telegram upgrades a group to a supergroup."""

from __future__ import annotations

import logging
from dataclasses import dataclass

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
        """Telegram moved the group to `new_id`: used from now on, and recorded in the caller's
        transaction (the update's, the outbox item's, or the start-up check's own)."""
        log.warning("Admin group migrated from %s to %s", self.id, new_id)
        self.id = new_id
        await repo.state.set(self.state_key, str(new_id))
