"""Errors no handler caught. A user who blocked the bot while we answered is marked, quietly.
Anything else: the update's transaction is already rolled back (DbSessionMiddleware), the
person is told in their language that nothing changed and to try again, a pressed button is
answered, and one log line carries the update ID and the traceback (never a text or name)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent

from bot.core.i18n import Translator, translator
from storage.repositories import Repositories

log = logging.getLogger(__name__)


async def user_blocked_us(event: ErrorEvent, repo: Repositories) -> None:
    user_id = event.update.event.from_user.id if event.update.event.from_user else None  # type: ignore[union-attr]
    if user_id is not None and await repo.users.set_blocked(user_id, True):
        # The update's own unit of work was rolled back when the error left the handler: this
        # write is a unit of its own, committed here.
        await repo.commit()
    log.info("Update %s: user %s has blocked the bot", event.update.update_id, user_id)


async def unexpected(event: ErrorEvent, bot: Bot, **data: Any) -> None:
    update = event.update
    log.error(
        "Update %s (%s) failed; nothing was changed",
        update.update_id,
        update.event_type,
        exc_info=event.exception,
    )
    t: Translator = data.get("t") or translator(data["settings"].default_locale)
    text = t("common.try_again")
    with contextlib.suppress(TelegramAPIError):
        if update.callback_query is not None:
            await update.callback_query.answer(text, show_alert=True)
        elif update.message is not None:
            await bot.send_message(update.message.chat.id, text)


def router() -> Router:
    r = Router(name="errors")
    r.errors.register(user_blocked_us, ExceptionTypeFilter(TelegramForbiddenError))
    r.errors.register(unexpected)
    return r
