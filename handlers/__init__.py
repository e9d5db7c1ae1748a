"""Thin aiogram routers, one module per feature, included in this order."""

from __future__ import annotations

from aiogram import F, Router

from bot.admin_chat import InAdminChat
from handlers import (
    admin,
    breaches,
    campaigns,
    common,
    consents,
    desk,
    errors,
    fallback,
    guardian,
    membership,
    onboarding,
    reports,
    rights,
    roles,
    staff_consents,
    templates,
)
from handlers.filters import Magic
from handlers.policy_change import PolicyChangeMiddleware

PRIVATE = "private"


def get_routers() -> list[Router]:
    """Private-chat features first, then the admin group, then the catch-all for bad input."""
    private = Router(name="private")
    private.message.filter(Magic(F.chat.type == PRIVATE))
    private.callback_query.filter(Magic(F.message.chat.type == PRIVATE))
    private.message.outer_middleware(PolicyChangeMiddleware())
    private.callback_query.outer_middleware(PolicyChangeMiddleware())
    private.include_routers(
        guardian.router(),
        onboarding.router(),
        consents.router(),
        rights.router(),
        common.router(),
        fallback.router(),
    )

    staff = Router(name="staff")
    staff.message.filter(InAdminChat())
    staff.callback_query.filter(InAdminChat())
    staff.chat_member.filter(InAdminChat())
    staff.include_routers(
        admin.router(),
        desk.router(),
        campaigns.router(),
        staff_consents.router(),
        roles.router(),
        templates.router(),
        reports.router(),
        breaches.router(),
    )

    return [errors.router(), membership.router(), private, staff, fallback.stale_buttons()]
