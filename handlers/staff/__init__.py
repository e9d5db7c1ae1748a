"""The admin group: request cards, commands and buttons for staff. Every staff-only handler
declares the staff action it performs as a flag (`bot.telegram.staff_gate`); the router's one
inner middleware checks the role and audits before the handler runs. Handlers without the flag
(the group's migration and membership updates, in `admin`) pass untouched."""

from __future__ import annotations

from aiogram import Router

from bot.telegram.filters import InAdminChat
from bot.telegram.staff_gate import StaffGate
from handlers.staff import (
    admin,
    breaches,
    campaigns,
    checklist,
    consents,
    desk,
    desk_typed,
    registers,
    reports,
    roles,
    templates,
)


def router() -> Router:
    staff = Router(name="staff")
    staff.message.filter(InAdminChat())
    staff.callback_query.filter(InAdminChat())
    staff.chat_member.filter(InAdminChat())
    staff.my_chat_member.filter(InAdminChat())
    gate = StaffGate()  # inner: runs once filters chose a handler, reads that handler's flag
    staff.message.middleware(gate)
    staff.callback_query.middleware(gate)
    staff.include_routers(
        admin.router(),
        checklist.router(),  # before desk_typed: its typed note and reason
        desk_typed.router(),  # before desk: a typed text replies to the bot's prompt
        desk.router(),
        registers.router(),
        campaigns.router(),
        consents.router(),
        roles.router(),
        templates.router(),
        reports.router(),
        breaches.router(),
    )
    return staff
