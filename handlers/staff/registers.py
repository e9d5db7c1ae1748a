"""Lists and records staff keep: /due (open requests and breach deadlines by due date, paged),
/register (every request as CSV) and /disclose (a disclosure of a user's data to a third
party, for the user's access report)."""

from __future__ import annotations

import shlex
from html import escape
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message, TelegramObject

from bot.core.clock import Clock
from bot.core.formatting import fmt_datetime
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from bot.domain.disclosures import record_disclosure
from bot.telegram.callbacks import parse_id
from bot.telegram.files import REGISTER_COLUMNS, SYSTEMS_COLUMN, CsvStream, register_rows
from bot.telegram.paging import PageCb, PagedList
from bot.telegram.screens import edit
from bot.telegram.staff_gate import staff_action
from bot.telegram.texts.requests import due_page
from storage.enums import OPEN
from storage.repositories import Repositories


async def due_command(
    message: Message, t: Translator, pack: PolicyPack, clock: Clock, repo: Repositories
) -> None:
    requests = await repo.requests.open_by_due(OPEN)
    breaches = await repo.breaches.authority_open()
    text, markup = due_page(requests, clock.now(), pack, t, 0, breaches)
    await message.answer(text, reply_markup=markup)


async def due_page_button(
    query: CallbackQuery,
    callback_data: PageCb,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    repo: Repositories,
) -> None:
    """Previous/Next under /due and the daily list: the same message, another page."""
    requests = await repo.requests.open_by_due(OPEN)
    breaches = await repo.breaches.authority_open()
    await query.answer()
    await edit(query, *due_page(requests, clock.now(), pack, t, callback_data.page, breaches))


async def register_command(
    message: Message, t: Translator, pack: PolicyPack, clock: Clock, repo: Repositories
) -> None:
    count = await repo.requests.count()
    now = clock.now()
    # Streamed from the database in chunks while it is uploaded: a register of any size. With
    # the operator's systems, each one's outcome per request (no personal column) comes last.
    outcomes = await repo.jobs.outcomes() if pack.systems else None
    columns = REGISTER_COLUMNS if outcomes is None else (*REGISTER_COLUMNS, SYSTEMS_COLUMN)
    document = CsvStream(
        columns,
        register_rows(repo.requests.register(), outcomes),
        filename=f"requests-{now.strftime('%Y%m%d-%H%M')}.csv",
    )
    caption = t("card.register_caption", count=count, when=fmt_datetime(now, t, pack.zone))
    await message.answer_document(document, caption=caption)


async def disclosure(_: Message, command: CommandObject) -> dict[str, list[str]]:
    """`/disclose <user id> <recipient> <what> <legal basis>`, multi-word parts quoted: the
    parts as typed (none when the quotes do not close)."""
    try:
        parts = shlex.split(command.args or "")
    except ValueError:
        parts = []
    return {"parts": parts}


def _disclosed_user(_: TelegramObject, data: dict[str, Any]) -> str | None:
    parts: list[str] = data["parts"]
    return parts[0][:20] if parts else None


async def disclose_command(
    message: Message, parts: list[str], t: Translator, clock: Clock, repo: Repositories
) -> None:
    """/disclose <user id> <recipient> <what> <legal basis>; quote multi-word parts."""
    assert message.from_user is not None
    user_id = parse_id(parts[0]) if len(parts) == 4 else None
    if user_id is None or any(len(p) > 200 for p in parts[1:]):
        await message.reply(t("staff.disclose_usage"))
        return
    user = await repo.users.get(user_id)
    if user is None:
        await message.reply(t("staff.disclose_unknown"))
        return
    await record_disclosure(
        repo,
        at=clock.now(),
        user_id=user.id,
        recipient=parts[1],
        data=parts[2],
        legal_basis=parts[3],
        staff_id=message.from_user.id,
    )
    await message.reply(t("staff.disclosed", user=user.id, recipient=escape(parts[1])))


def router() -> Router:
    r = Router(name="registers")
    due = staff_action("requests.due")
    r.message.register(due_command, Command("due"), flags=due)
    r.callback_query.register(due_page_button, PageCb.filter(F.list == PagedList.DUE), flags=due)
    r.message.register(
        register_command, Command("register"), flags=staff_action("requests.register")
    )
    r.message.register(
        disclose_command,
        Command("disclose"),
        disclosure,
        flags=staff_action("disclosure.record", subject=_disclosed_user),
    )
    return r
