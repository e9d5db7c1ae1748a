"""SYSTEMS_ANSWER: the answer to an access or portability request carried out in the
operator's systems, rendered at delivery from the request and its jobs, into the person's chat.

The desk queues the item once every system's job is done (or a DPO completed the request with
the rest explained). The answer says the request is done (the desk's own "done" text, so no
second notice goes), then, for access, today's readable report and the systems' part (as a file
when it is long), then the JSON export with the systems' part (portability: the notice and the
file). Each message sent is recorded on the item (`text` = {"sent": n}) in its own commit, so an
answer cut by a flood limit or a network error goes on where it stopped; only the message in
flight at a crash may come twice (it is marked). Once the last file is sent, the collected data
is purged `retention.access_data_days` later. A person erased meanwhile: the item ends quietly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiogram import Bot
from aiogram.types import BufferedInputFile, Message
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError

from bot.core.i18n import Translator, translator
from bot.core.law import RequestType
from bot.core.policy import PolicyPack
from bot.delivery.outbox.context import SendContext
from bot.delivery.outbox.errors import ErasedMeanwhile
from bot.domain.export import build_export, export_bytes
from bot.domain.requests.notices import user_notice
from bot.telegram.texts.access import access_report
from bot.telegram.texts.answer import export_caption, systems_html, systems_messages, systems_text
from storage.models import OutboxItem, Request, User
from storage.repositories import Repositories

# What a vanished row looks like in the middle of the answer (the person was erased).
GONE = (ObjectDeletedError, StaleDataError, IntegrityError)


@dataclass(frozen=True)
class Step:
    """One message of the answer: a text, or a file (`document`, named `filename`) with
    `text` as its caption."""

    text: str
    document: bytes | None = None
    filename: str = ""


def answer_steps(
    pack: PolicyPack,
    user: User,
    request: Request,
    export: dict[str, Any],
    t: Translator,
    now: datetime,
) -> list[Step]:
    """Every message of the answer, in order (the same again when it is rendered again)."""
    steps = [Step(user_notice(request, user, "done", "", pack))]
    if request.type == RequestType.ACCESS:
        report = access_report(pack, user, export, t, file_line=False)
        steps += [Step(part) for part in report]
        if not export["systems"]:  # no system held anything for this request
            return [*steps, Step(t("answer.file")), _json_step(export, t, now)]
        text = systems_text(pack, export["systems"], t) + "\n\n" + t("answer.file")
        parts = systems_messages(text)
        if parts is None:
            page = systems_html(text, t("answer.document_title", id=request.id), t.locale)
            name = f"systems-data-{request.id}.html"
            steps.append(Step(t("answer.as_file"), page, name))
        else:
            steps += [Step(part) for part in parts]
    return [*steps, _json_step(export, t, now)]


def _json_step(export: dict[str, Any], t: Translator, now: datetime) -> Step:
    name = f"my-data-{now.strftime('%Y%m%d')}.json"
    return Step(export_caption(export, t), export_bytes(export), name)


def progress(item: OutboxItem) -> int:
    """How many of the answer's messages were sent already."""
    try:
        return int(json.loads(item.text or "{}").get("sent", 0))
    except (ValueError, AttributeError):
        return 0


async def send_systems_answer(
    ctx: SendContext, bot: Bot, repo: Repositories, item: OutboxItem, request: Request | None
) -> None:
    if request is None or item.user_id is None:
        raise ErasedMeanwhile()  # the request went with its person
    chat = item.user_id
    try:
        request_id = request.id
        user = await repo.users.get(chat)
        if user is None:
            raise ErasedMeanwhile()
        t = translator(user.language)
        export = await build_export(repo, user, ctx.pack, ctx.clock, request_id=request_id)
        steps = answer_steps(ctx.pack, user, request, export, t, ctx.clock.now())
        start, repeated = progress(item), item.repeated
        await repo.commit()  # the reads end here: no transaction stays open during a call
    except GONE as error:
        raise ErasedMeanwhile() from error
    for index in range(start, len(steps)):
        step = steps[index]
        text = step.text
        if repeated and index == start and step.document is None:
            text = t("outbox.may_repeat") + "\n\n" + text
        sent = await _send(bot, chat, step, text)
        try:
            if index == 0:  # the "done" message: a reply to it reaches the card
                item.message_id = sent.message_id
                await repo.requests.link(chat, sent.message_id, request_id)
            item.text = json.dumps({"sent": index + 1})
            await repo.commit()  # sent, for good: not sent again after a retry
        except GONE as error:
            raise ErasedMeanwhile() from error
    now = ctx.clock.now()
    purge_at = now + timedelta(days=ctx.pack.retention.access_data_days)
    await repo.jobs.delivered(request_id, now, purge_at)


async def _send(bot: Bot, chat: int, step: Step, text: str) -> Message:
    if step.document is None:
        return await bot.send_message(chat, text)
    document = BufferedInputFile(step.document, filename=step.filename)
    return await bot.send_document(chat, document, caption=text)


async def answer_undelivered(
    repo: Repositories, pack: PolicyPack, request_id: int, now: datetime
) -> None:
    """The answer cannot reach the person (they blocked the bot, or Telegram refused it): the
    collected data is purged as if it had been delivered now (the person may still get it
    with /export until then)."""
    purge_at = now + timedelta(days=pack.retention.access_data_days)
    await repo.jobs.undelivered(request_id, purge_at)
