"""The private chat: a person's onboarding, consents, rights requests and menu; their
representative's link. Each module a feature, included in this order."""

from __future__ import annotations

from aiogram import F, Router

from bot.telegram.filters import Magic
from bot.telegram.policy_change import PolicyChangeMiddleware
from handlers import fallback
from handlers.private import (
    common,
    consents,
    followups,
    guardian,
    onboarding,
    requests,
    rights,
)

PRIVATE = "private"


def router() -> Router:
    private = Router(name="private")
    private.message.filter(Magic(F.chat.type == PRIVATE))
    private.callback_query.filter(Magic(F.message.chat.type == PRIVATE))
    private.message.outer_middleware(PolicyChangeMiddleware())
    private.callback_query.outer_middleware(PolicyChangeMiddleware())
    private.include_routers(
        guardian.router(),
        onboarding.router(),
        consents.router(),
        requests.router(),  # commands: before the rights flow's state handlers, as they were
        rights.router(),
        followups.router(),
        common.router(),
        fallback.router(),
    )
    return private
