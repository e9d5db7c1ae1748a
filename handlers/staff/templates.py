"""Answer templates: `/templates` (list), `/templates add <name>` with `ru:` and `en:` blocks,
`/templates delete <number>`; and the picker under a card's Template button."""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import CallbackQuery, Message, TelegramObject

from bot.core.clock import Clock
from bot.core.i18n import Translator
from bot.domain.requests.desk import Desk
from bot.domain.templates import MAX_TEMPLATES, PLACEHOLDERS, parse, texts_of
from bot.telegram.callbacks import TemplateCb
from bot.telegram.screens import edit
from bot.telegram.staff_gate import staff_action
from bot.telegram.texts.parts import split_message
from storage.enums import OPEN
from storage.repositories import Repositories

PREVIEW = 120
VERBS = ("add", "delete")


def usage(t: Translator) -> str:
    return t("templates.usage", **{key: f"{{{key}}}" for key in PLACEHOLDERS})


class Verb(Filter):
    """`/templates <verb> <rest>`: passes on the rest as typed; `None` matches the listing
    (no verb, or one that is neither add nor delete)."""

    def __init__(self, verb: str | None) -> None:
        self.verb = verb

    async def __call__(self, _: Message, command: CommandObject) -> dict[str, str] | bool:
        verb, rest = (*re.split(r"\s", (command.args or "").strip(), maxsplit=1), "")[:2]
        known = verb if verb in VERBS else None
        return {"rest": rest} if known == self.verb else False


async def add_template(
    message: Message, rest: str, t: Translator, clock: Clock, repo: Repositories
) -> None:
    assert message.from_user is not None
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
    await message.reply(t("templates.added", id=template.id, name=escape(template.name)))


async def delete_template(message: Message, rest: str, t: Translator, repo: Repositories) -> None:
    word = rest.strip()
    if not word.isdigit() or not await repo.templates.delete(int(word)):
        await message.reply(t("templates.not_found"))
        return
    await message.reply(t("templates.deleted", id=int(word)))


async def list_templates(message: Message, t: Translator, repo: Repositories) -> None:
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


async def close_picker(query: CallbackQuery, t: Translator) -> None:
    await query.answer()
    await edit(query, t("templates.closed"))


async def use_template(
    query: CallbackQuery,
    callback_data: TemplateCb,
    t: Translator,
    desk: Desk,
    repo: Repositories,
) -> None:
    request = await repo.requests.get(callback_data.request)
    template = await repo.templates.get(callback_data.template)
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


def _use_subject(_: TelegramObject, data: dict[str, Any]) -> str:
    picked: TemplateCb = data["callback_data"]
    return f"request:{picked.request}:template:{picked.template}"


def router() -> Router:
    r = Router(name="templates")
    templates = Command("templates")
    r.message.register(add_template, templates, Verb("add"), flags=staff_action("templates.add"))
    r.message.register(
        delete_template,
        templates,
        Verb("delete"),
        flags=staff_action("templates.delete", subject=lambda _, data: data["rest"].strip()[:20]),
    )
    r.message.register(list_templates, templates, Verb(None), flags=staff_action("templates.list"))
    use = staff_action("template.use", subject=_use_subject)
    r.callback_query.register(close_picker, TemplateCb.filter(F.template == 0), flags=use)
    r.callback_query.register(use_template, TemplateCb.filter(), flags=use)
    return r
