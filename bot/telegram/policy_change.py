"""A new policy version is told to each user at their next interaction in the private chat."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.types import CallbackQuery, Chat, Message, TelegramObject

from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from bot.domain.consents import Consents
from bot.domain.onboarding import Onboarding
from bot.telegram.screens import send_policy_update
from storage.models import User

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class PolicyChangeMiddleware(BaseMiddleware):
    """Runs before the private-chat handlers; the update itself is then handled as usual."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        chat: Chat | None = data.get("event_chat")
        user: User | None = data.get("user")
        pack: PolicyPack = data["pack"]
        if (
            isinstance(event, Message | CallbackQuery)
            and chat is not None
            and chat.type == "private"
            and user is not None
            and user.notice_version is not None
            and user.notice_version != pack.policy.version
        ):
            bot: Bot = data["bot"]
            t: Translator = data["t"]
            onboarding: Onboarding = data["onboarding"]
            consents: Consents = data["consents"]
            await send_policy_update(bot, user, t, pack, onboarding, consents)
        return await handler(event, data)
