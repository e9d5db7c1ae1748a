"""/role: a DPO lists roles or gives one: `/role <user id> dpo|agent|marketing`."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.core.clock import Clock
from bot.core.i18n import Translator
from bot.core.roles import Need, parse_role
from bot.domain.staff import StaffDirectory
from bot.telegram.callbacks import parse_id
from bot.telegram.screens import staff_or_refuse
from storage.repositories import Repositories


async def role_command(
    message: Message,
    command: CommandObject,
    bot: Bot,
    t: Translator,
    clock: Clock,
    staff: StaffDirectory,
    repo: Repositories,
) -> None:
    assert message.from_user is not None
    parts = (command.args or "").split()
    if not parts:
        if not await staff_or_refuse(message, bot, t, staff, repo, "role.list", None, Need.DPO):
            return
        lines = [t("roles.list_title")]
        lines += [
            t("roles.list_line", user=row.user_id, role=t(f"roles.{row.role}"))
            for row in await repo.roles.every()
        ] or [t("roles.list_empty")]
        lines += ["", t("roles.usage")]
        await message.reply("\n".join(lines))
        return
    role = parse_role(parts[1]) if len(parts) == 2 else None
    subject = f"{parts[0][:20]}:{role or '?'}"
    if not await staff_or_refuse(message, bot, t, staff, repo, "role.set", subject, Need.DPO):
        return
    user_id = parse_id(parts[0])
    if role is None or user_id is None:
        await message.reply(t("roles.usage"))
        return
    await repo.roles.set(user_id, role, set_by=message.from_user.id, now=clock.now())
    await repo.commit()
    await message.reply(t("roles.set", user=user_id, role=t(f"roles.{role}")))


def router() -> Router:
    r = Router(name="roles")
    r.message.register(role_command, Command("role"))
    return r
