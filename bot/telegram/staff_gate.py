"""The staff gate: a staff handler declares the action it performs as an aiogram flag, and one
inner middleware on the staff router (`handlers.staff`) checks the sender's role before the
handler runs.

    r.callback_query.register(
        breach_notified, BreachCb.filter(F.action == BreachAction.NOTIFIED),
        flags=staff_action("breach.notified", subject=callback_id),
    )

The flag names the action (as the audit log writes it), how to read the audit subject from the
event and its data (the callback data's ID, what a filter parsed from the command), and the
role needed (by default the need of the action's name, `bot.core.roles.need_for`). The check
(`StaffDirectory.check`) writes the audit row, allowed or refused; a refused person gets a
reply to their message or an alert on their button, naming the role needed, and the handler
does not run. A handler without the flag passes untouched (membership updates, say).

Input refused before the audit (an empty reason, a command that does not parse into a
subject) is answered by a handler registered before the flagged one, or left to a filter that
passes the parsed value on in the data: the gate only ever sees what got that far.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.flags import get_flag
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, TelegramObject
from aiogram.types import User as TgUser

from bot.core.i18n import Translator
from bot.core.roles import Need
from bot.domain.staff import Decision, StaffDirectory
from storage.repositories import Repositories

FLAG = "staff_action"

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
# What the gate reads from the event and its data (sync, or a coroutine when it needs the
# database): the action's name, the audit subject, the role needed.
Read = Callable[[TelegramObject, dict[str, Any]], Any]


@dataclass(frozen=True)
class StaffAction:
    """What a staff handler does, as the gate checks and audits it."""

    action: str | Read
    subject: Read | None = None
    need: Need | Read | None = None
    forget_input: bool = False  # a refusal also ends the conversation state (a typed reason)
    explain: Read | None = None  # what a refusal says first, why this press needs the role

    async def check(self, event: TelegramObject, data: dict[str, Any]) -> Decision:
        sender: TgUser = data["event_from_user"]
        staff: StaffDirectory = data["staff"]
        repo: Repositories = data["repo"]
        action = await _read(self.action, event, data)
        subject = await _read(self.subject, event, data)
        need = await _read(self.need, event, data)
        return await staff.check(data["bot"], sender.id, action, subject, repo, need)


async def _read(value: Any, event: TelegramObject, data: dict[str, Any]) -> Any:
    if not callable(value):
        return value
    result = value(event, data)
    return await result if inspect.isawaitable(result) else result


def staff_action(
    action: str | Read,
    *,
    subject: Read | None = None,
    need: Need | Read | None = None,
    forget_input: bool = False,
    explain: Read | None = None,
) -> dict[str, StaffAction]:
    """The `flags=` of a staff handler's registration."""
    return {FLAG: StaffAction(action, subject, need, forget_input, explain)}


def callback_id(_: TelegramObject, data: dict[str, Any]) -> str:
    """The audit subject of a button: the ID in its callback data (request, breach, campaign)."""
    return str(data["callback_data"].id)


async def refuse(event: TelegramObject, decision: Decision, t: Translator, why: str = "") -> None:
    """The refusal, exactly as staff saw it before the gate: a reply, or an alert on a button;
    `why` first, when the action says why this press needs the role."""
    prefix = f"{why} " if why else ""
    if isinstance(event, CallbackQuery):
        await event.answer(prefix + decision.refusal(t, alert=True), show_alert=True)
    elif isinstance(event, Message):
        await event.reply(prefix + decision.refusal(t))


class StaffGate(BaseMiddleware):
    """The inner middleware of the staff router: the flagged handler runs only when allowed."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        declared: StaffAction | None = get_flag(data, FLAG)
        if declared is None:
            return await handler(event, data)
        decision = await declared.check(event, data)
        if decision:
            return await handler(event, data)
        why = await _read(declared.explain, event, data) if decision.role is not None else ""
        await refuse(event, decision, data["t"], why or "")
        if declared.forget_input:
            state: FSMContext = data["state"]
            await state.clear()
        return None
