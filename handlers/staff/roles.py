"""/role: a DPO lists roles, gives one (`/role <user id> dpo|agent|marketing`) or takes one
back (`/role <user id> none`: the role then comes from STAFF_ROLES or the admin group, if at
all). The person's menu button follows: the desk app for desk work, else the default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message, TelegramObject

from bot.core.clock import Clock
from bot.core.i18n import Translator
from bot.core.roles import Need, Role, parse_role
from bot.domain.staff import StaffDirectory
from bot.telegram.callbacks import parse_id
from bot.telegram.desk_menu import set_desk_menu
from bot.telegram.staff_gate import staff_action
from storage.repositories import Repositories


@dataclass(frozen=True)
class Wanted:
    """`/role <user id> <role>` as typed: the ID unchecked, the role None when not one."""

    user: str
    role: Role | None
    revoke: bool = False

    def subject(self) -> str:
        return f"{self.user[:20]}:{'none' if self.revoke else self.role or '?'}"


async def listing(_: Message, command: CommandObject) -> bool:
    return not (command.args or "").split()


async def setting(_: Message, command: CommandObject) -> dict[str, Wanted] | bool:
    parts = (command.args or "").split()
    if not parts:
        return False
    role = parse_role(parts[1]) if len(parts) == 2 else None
    revoke = len(parts) == 2 and parts[1].lower() == "none"
    return {"wanted": Wanted(parts[0], role, revoke)}


async def list_roles(message: Message, t: Translator, repo: Repositories) -> None:
    lines = [t("roles.list_title")]
    lines += [
        t("roles.list_line", user=row.user_id, role=t(f"roles.{row.role}"))
        for row in await repo.roles.every()
    ] or [t("roles.list_empty")]
    lines += ["", t("roles.usage")]
    await message.reply("\n".join(lines))


async def set_role(
    message: Message,
    wanted: Wanted,
    bot: Bot,
    t: Translator,
    clock: Clock,
    webapp_url: str | None,
    staff: StaffDirectory,
    repo: Repositories,
) -> None:
    assert message.from_user is not None
    user_id = parse_id(wanted.user)
    if (wanted.role is None and not wanted.revoke) or user_id is None:
        await message.reply(t("roles.usage"))
        return
    if wanted.role is not None:
        await repo.roles.set(user_id, wanted.role, set_by=message.from_user.id, now=clock.now())
        await message.reply(t("roles.set", user=user_id, role=t(f"roles.{wanted.role}")))
    elif await repo.roles.remove(user_id):
        await message.reply(t("roles.removed", user=user_id))
    else:
        await message.reply(t("roles.none_given", user=user_id))
    await repo.commit()  # the role holds before Telegram is asked for the menu button
    role = await staff.role(bot, user_id, repo)
    await set_desk_menu(bot, user_id, role, webapp_url, t)


def _subject(_: TelegramObject, data: dict[str, Any]) -> str:
    wanted: Wanted = data["wanted"]
    return wanted.subject()


def router() -> Router:
    r = Router(name="roles")
    r.message.register(
        list_roles, Command("role"), listing, flags=staff_action("role.list", need=Need.DPO)
    )
    r.message.register(
        set_role,
        Command("role"),
        setting,
        flags=staff_action("role.set", subject=_subject, need=Need.DPO),
    )
    return r
