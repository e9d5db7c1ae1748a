"""Answer templates: `/templates` (list), `/templates add <name>` with `ru:` and `en:` blocks,
`/templates delete <number>`; and the picker under a card's Template button."""

from __future__ import annotations

import json
import re
from html import escape

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message, ReplyParameters

from bot.core.clock import Clock
from bot.core.i18n import Translator
from bot.domain.requests.desk import Desk
from bot.domain.staff import StaffDirectory
from bot.domain.templates import MAX_TEMPLATES, PLACEHOLDERS, parse, texts_of
from bot.telegram import keyboards
from bot.telegram.callbacks import TemplateCb
from bot.telegram.render import split_message
from bot.telegram.screens import edit, staff_or_alert, staff_or_refuse
from storage.enums import OPEN
from storage.models import Request
from storage.repositories import Repositories

PREVIEW = 120


def usage(t: Translator) -> str:
    return t("templates.usage", **{key: f"{{{key}}}" for key in PLACEHOLDERS})


async def templates_command(
    message: Message,
    command: CommandObject,
    bot: Bot,
    t: Translator,
    clock: Clock,
    staff: StaffDirectory,
    repo: Repositories,
) -> None:
    assert message.from_user is not None
    verb, rest = (*re.split(r"\s", (command.args or "").strip(), maxsplit=1), "")[:2]
    if verb == "add":
        if not await staff_or_refuse(message, bot, t, staff, repo, "templates.add", None):
            return
        draft = parse(rest)
        if draft is None:
            await message.reply(usage(t))
            return
        if await repo.templates.count() >= MAX_TEMPLATES:
            await message.reply(t("templates.too_many", limit=MAX_TEMPLATES))
            return
        template = await repo.templates.add(
            name=draft.name,
            texts=json.dumps(draft.texts, ensure_ascii=False),
            created_by=message.from_user.id,
            now=clock.now(),
        )
        await repo.commit()
        await message.reply(t("templates.added", id=template.id, name=escape(template.name)))
        return
    if verb == "delete":
        word = rest.strip()
        if not await staff_or_refuse(message, bot, t, staff, repo, "templates.delete", word[:20]):
            return
        if not word.isdigit() or not await repo.templates.delete(int(word)):
            await message.reply(t("templates.not_found"))
            return
        await repo.commit()
        await message.reply(t("templates.deleted", id=int(word)))
        return
    if not await staff_or_refuse(message, bot, t, staff, repo, "templates.list", None):
        return
    templates = await repo.templates.every()
    if not templates:
        await message.reply(t("templates.none") + "\n\n" + usage(t))
        return
    lines = [t("templates.title"), ""]
    for template in templates:
        lines.append(t("templates.line", id=template.id, name=escape(template.name)))
        for code, text in texts_of(template).items():
            short = text if len(text) <= PREVIEW else text[:PREVIEW] + "…"
            lines.append(f"  {code}: {escape(short)}")
    lines += ["", usage(t)]
    for part in split_message("\n".join(lines)):
        await message.answer(part)


async def show_picker(
    query: CallbackQuery, bot: Bot, request: Request, t: Translator, repo: Repositories
) -> None:
    """The templates to choose from, under the card."""
    templates = await repo.templates.every()
    if not templates:
        await query.answer(t("templates.none"), show_alert=True)
        return
    await query.answer()
    if query.message is None:
        return
    await bot.send_message(
        query.message.chat.id,
        t("templates.pick", id=request.id),
        reply_markup=keyboards.template_picker(templates, request.id, t),
        reply_parameters=ReplyParameters(
            message_id=query.message.message_id, allow_sending_without_reply=True
        ),
    )


async def template_button(
    query: CallbackQuery,
    callback_data: TemplateCb,
    bot: Bot,
    t: Translator,
    desk: Desk,
    staff: StaffDirectory,
    repo: Repositories,
) -> None:
    request_id, template_id = callback_data.request, callback_data.template
    subject = f"request:{request_id}:template:{template_id}"
    if not await staff_or_alert(query, bot, t, staff, repo, "template.use", subject):
        return
    if template_id == 0:
        await query.answer()
        await edit(query, t("templates.closed"))
        return
    request = await repo.requests.get(request_id)
    template = await repo.templates.get(template_id)
    if request is None or template is None:
        await query.answer(t("common.stale_button"), show_alert=True)
        return
    if request.status not in OPEN:
        await query.answer(t("card.closed", id=request.id), show_alert=True)
        return
    await query.answer()
    # "Queued" now; the outbox edits it to "Sent to the user" once the user has it (or why not).
    await edit(query, t("templates.queued", name=escape(template.name), id=request.id))
    confirm = query.message.message_id if isinstance(query.message, Message) else None
    await desk.send_template(request, template, query.from_user.id, confirm_message_id=confirm)


def router() -> Router:
    r = Router(name="templates")
    r.message.register(templates_command, Command("templates"))
    r.callback_query.register(template_button, TemplateCb.filter())
    return r
