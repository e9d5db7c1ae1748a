"""/role: a DPO lists roles or gives one: `/role <user id> dpo|agent|marketing`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message, TelegramObject

from bot.core.clock import Clock
from bot.core.i18n import Translator
from bot.core.roles import Need, Role, parse_role
from bot.telegram.callbacks import parse_id
from bot.telegram.staff_gate import staff_action
from storage.repositories import Repositories


@dataclass(frozen=True)
class Wanted:
    """`/role <user id> <role>` as typed: the ID unchecked, the role None when not one."""

    user: str
    role: Role | None

    def subject(self) -> str:
        return f"{self.user[:20]}:{self.role or '?'}"


async def listing(_: Message, command: CommandObject) -> bool:
    return not (command.args or "").split()


async def setting(_: Message, command: CommandObject) -> dict[str, Wanted] | bool:
    parts = (command.args or "").split()
    if not parts:
        return False
    role = parse_role(parts[1]) if len(parts) == 2 else None
    return {"wanted": Wanted(parts[0], role)}


async def list_roles(message: Message, t: Translator, repo: Repositories) -> None:
    lines = [t("roles.list_title")]
    lines += [
        t("roles.list_line", user=row.user_id, role=t(f"roles.{row.role}"))
        for row in await repo.roles.every()
    ] or [t("roles.list_empty")]
    lines += ["", t("roles.usage")]
    await message.reply("\n".join(lines))


async def set_role(
    message: Message, wanted: Wanted, t: Translator, clock: Clock, repo: Repositories
) -> None:
    assert message.from_user is not None
    user_id = parse_id(wanted.user)
    if wanted.role is None or user_id is None:
        await message.reply(t("roles.usage"))
        return
    await repo.roles.set(user_id, wanted.role, set_by=message.from_user.id, now=clock.now())
    await message.reply(t("roles.set", user=user_id, role=t(f"roles.{wanted.role}")))


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
