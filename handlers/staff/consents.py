"""Staff record a consent change a user asked for in writing:
`/consent <user id> <purpose> on|off`."""

from __future__ import annotations

import contextlib
from html import escape
from typing import Any

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject
from aiogram.types import Message, TelegramObject

from bot.core.i18n import Translator, translator
from bot.core.policy import PolicyPack, Purpose
from bot.domain.consents import ConsentOutcome, Consents
from bot.telegram.callbacks import parse_id
from bot.telegram.staff_gate import staff_action
from storage.models import User
from storage.repositories import Repositories


def _user_word(_: TelegramObject, data: dict[str, Any]) -> str | None:
    """The audit subject: the user ID as typed (cut), before it is checked."""
    parts = (data["command"].args or "").split()
    return parts[0][:20] if parts else None


def _notice(user: User, purpose: Purpose, granted: bool) -> str:
    """What the user is told, in their language, and what the ledger keeps as shown."""
    ut = translator(user.language)
    title = escape(purpose.title.get(ut.locale))
    state = ut("consents.state_on" if granted else "consents.state_off")
    return ut("consents.staff_changed", title=title, state=state)


async def consent_command(
    message: Message,
    command: CommandObject,
    bot: Bot,
    t: Translator,
    pack: PolicyPack,
    consents: Consents,
    repo: Repositories,
) -> None:
    assert message.from_user is not None
    parts = (command.args or "").split()
    purposes = ", ".join(p.id for p in pack.consent_purposes)
    user_id = parse_id(parts[0]) if len(parts) == 3 else None
    if user_id is None or parts[2] not in {"on", "off"}:
        await message.reply(t("staff.consent_usage", purposes=purposes))
        return
    user = await repo.users.get(user_id)
    purpose = pack.consent_purpose(parts[1])
    if user is None or purpose is None:
        await message.reply(t("staff.consent_unknown", purposes=purposes))
        return
    granted = parts[2] == "on"
    notice = _notice(user, purpose, granted)
    staff_id = message.from_user.id
    outcome = await consents.recorded_by_staff(user, purpose.id, granted, staff_id, notice)
    if outcome is not ConsentOutcome.CHANGED:
        locked = outcome is ConsentOutcome.LOCKED
        key = "staff.consent_locked" if locked else "staff.consent_unchanged"
        await message.reply(t(key, age=pack.age.consent_age))
        return
    await message.reply(
        t("staff.consent_recorded", user=user.id, purpose=purpose.id, state=parts[2])
    )
    with contextlib.suppress(TelegramAPIError):  # recorded; the user also sees it in /consents
        await bot.send_message(user.id, notice)


def router() -> Router:
    r = Router(name="staff-consents")
    r.message.register(
        consent_command,
        Command("consent"),
        flags=staff_action("consent.record", subject=_user_word),
    )
    return r
