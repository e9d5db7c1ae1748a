"""Errors no handler caught. A user who blocked the bot while we answered is marked, quietly."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.exceptions import TelegramForbiddenError
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent

from storage.repositories import Repositories

log = logging.getLogger(__name__)


async def user_blocked_us(event: ErrorEvent, repo: Repositories) -> None:
    user_id = event.update.event.from_user.id if event.update.event.from_user else None  # type: ignore[union-attr]
    user = await repo.users.get(user_id) if user_id else None
    if user is not None:
        user.blocked_bot = True
        await repo.commit()
    log.info("Update %s: user %s has blocked the bot", event.update.update_id, user_id)


def router() -> Router:
    r = Router(name="errors")
    r.errors.register(user_blocked_us, ExceptionTypeFilter(TelegramForbiddenError))
    return r
