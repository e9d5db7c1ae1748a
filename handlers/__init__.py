"""Thin aiogram routers: the private chat (`handlers.private`), the admin group
(`handlers.staff`), then what neither answered. Handlers parse, call the domain and render
through `bot.telegram`; they never hold a rule nor import one another."""

from __future__ import annotations

from aiogram import Router

from handlers import errors, fallback, membership, private, staff


def get_routers() -> list[Router]:
    """Private-chat features first, then the admin group, then the catch-all for bad input."""
    return [
        errors.router(),
        membership.router(),
        private.router(),
        staff.router(),
        fallback.stale_buttons(),
    ]
