"""The senders: one function per outbox kind, each making the Telegram call(s) its item stands
for, looked up in `SENDERS` by the item's `OutboxKind`. A sender raises what Telegram answered
(the queue engine decides what an error means), `Permanent` when the item can never go, or
`ErasedMeanwhile` when its person was erased during the call.

A claimed item's `sending` is committed before its sender runs; a sender that reads before
its call commits those reads first, so no transaction stays open while Telegram answers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from html import escape

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InlineKeyboardMarkup, ReplyParameters
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError

from bot.core.formatting import fmt_datetime
from bot.core.i18n import Translator, translator
from bot.delivery.outbox.answer import send_systems_answer
from bot.delivery.outbox.card import app_link, render_card
from bot.delivery.outbox.context import SendContext
from bot.delivery.outbox.errors import ErasedMeanwhile, Permanent, group_missing, nothing_to_edit
from bot.domain.attachments import fit_caption, megabytes
from bot.domain.staff_reach import reason_of
from bot.telegram.texts.requests import due_page
from storage.enums import OPEN, AttachmentStatus, OutboxKind
from storage.models import OutboxItem, Request, RequestAttachment
from storage.repositories import Repositories

# Kinds whose text says, when sent again after a crash, that it may be a repeat.
MARKED = frozenset({OutboxKind.CARD, OutboxKind.TO_USER, OutboxKind.TO_STAFF, OutboxKind.TO_ADMIN})
# A card posted this long after its request was received says so, with the time received (the
# admin group could not be reached, or a burst of cards was paced).
POSTED_LATE = timedelta(minutes=10)


Sender = Callable[[SendContext, Bot, Repositories, OutboxItem, Request | None], Awaitable[None]]


# --- shared by the senders -------------------------------------------------------------------


def marked(ctx: SendContext, item: OutboxItem, text: str, t: Translator | None = None) -> str:
    if item.repeated and item.kind in MARKED:
        return (t or ctx.t)("outbox.may_repeat") + "\n\n" + text
    return text


async def link(
    ctx: SendContext, repo: Repositories, chat_id: int, message_id: int, request: Request
) -> None:
    """Record a message just posted about `request`; its flush fails when the request was
    erased during the call (a changed row no longer there, a link to a missing row)."""
    try:
        await repo.requests.link(chat_id, message_id, request.id)
        await repo.session.flush()
    except (StaleDataError, ObjectDeletedError, IntegrityError) as error:
        admin = chat_id == ctx.admin_chat.id
        raise ErasedMeanwhile(*((chat_id, message_id) if admin else ())) from error


def _the(request: Request | None) -> Request:
    """The item's request, for the kinds that are about one."""
    if request is None:
        raise Permanent("the request no longer exists")
    return request


def _under(request: Request) -> ReplyParameters | None:
    """Threaded under the card, when the card was posted (the card's lane comes first)."""
    if request.card_message_id is None:
        return None
    return ReplyParameters(message_id=request.card_message_id, allow_sending_without_reply=True)


async def attachment_of(repo: Repositories, item: OutboxItem) -> RequestAttachment | None:
    payload = json.loads(item.text or "{}")
    return await repo.attachments.get(int(payload.get("attachment", 0)))


async def _card(
    ctx: SendContext, bot: Bot, repo: Repositories, request: Request
) -> tuple[str, InlineKeyboardMarkup | None]:
    link = await app_link(bot, ctx.app_short_name, request.id)
    return await render_card(repo, ctx.pack, ctx.clock, ctx.t, request, link)


# --- one sender per kind ---------------------------------------------------------------------


async def send_to_user(
    ctx: SendContext, bot: Bot, repo: Repositories, item: OutboxItem, request: Request | None
) -> None:
    """TO_USER: a message about a request (or a notice) into the user's chat, in their
    language."""
    assert item.user_id is not None and item.text is not None
    user = await repo.users.get(item.user_id)
    t = translator(user.language) if user is not None else ctx.t
    await repo.commit()  # the reads end here: no transaction stays open during the call
    sent = await bot.send_message(item.user_id, marked(ctx, item, item.text, t))
    item.message_id = sent.message_id
    if request is not None:
        await link(ctx, repo, item.user_id, sent.message_id, request)


async def send_to_admin(
    ctx: SendContext, bot: Bot, repo: Repositories, item: OutboxItem, request: Request | None
) -> None:
    """TO_ADMIN and NOTICE: a text to the admin group."""
    assert item.text is not None
    sent = await bot.send_message(ctx.admin_chat.id, marked(ctx, item, item.text))
    item.message_id = sent.message_id


async def send_due_list(
    ctx: SendContext, bot: Bot, repo: Repositories, item: OutboxItem, request: Request | None
) -> None:
    """DUE_LIST: the daily list of open requests and breaches, rendered now (its first page)."""
    requests = await repo.requests.open_by_due(OPEN)
    breaches = await repo.breaches.authority_open()
    await repo.commit()  # the reads end here: no transaction stays open during the call
    now = ctx.clock.now()
    text, markup = due_page(requests, now, ctx.pack, ctx.t, 0, breaches)
    sent = await bot.send_message(ctx.admin_chat.id, marked(ctx, item, text), reply_markup=markup)
    item.message_id = sent.message_id


async def unrelay(
    ctx: SendContext, bot: Bot, repo: Repositories, item: OutboxItem, request: Request | None
) -> None:
    """UNRELAY: what an erased person sent, relayed into the admin group, is deleted. Telegram
    lets a bot delete a message only within 48 hours of its sending: an older one is blanked
    (its text or caption replaced); one that can be neither is left to staff (the engine's
    `_failed` says so)."""
    assert item.chat_id is not None and item.message_id is not None
    chat, message_id = item.chat_id, item.message_id
    erased = str(json.loads(item.text or "{}").get("erased", ""))
    try:
        await bot.delete_message(chat, message_id)
        return
    except TelegramBadRequest as error:
        if "message to delete not found" in error.message:
            return
        if group_missing(error) or reason_of(error) is not None:
            raise  # the group is gone for now, or the right to delete: wait until it is back
    try:
        await bot.edit_message_text(erased, chat_id=chat, message_id=message_id)
        return
    except TelegramBadRequest as error:
        if nothing_to_edit(error):
            return
    try:
        await bot.edit_message_caption(chat_id=chat, message_id=message_id, caption=erased)
    except TelegramBadRequest as error:
        if not nothing_to_edit(error):
            raise Permanent("neither deleted nor blanked") from error


async def redact(
    ctx: SendContext, bot: Bot, repo: Repositories, item: OutboxItem, request: Request | None
) -> None:
    """REDACT: after an erasure, a card edited to the redacted text."""
    assert item.chat_id is not None and item.message_id is not None and item.text
    try:
        await bot.edit_message_text(item.text, chat_id=item.chat_id, message_id=item.message_id)
    except TelegramBadRequest as error:
        if not nothing_to_edit(error):
            raise


async def copy_to_user(
    ctx: SendContext, bot: Bot, repo: Repositories, item: OutboxItem, request: Request | None
) -> None:
    """COPY_USER: staff's file copied to the user."""
    request = _the(request)
    attachment = await attachment_of(repo, item)
    if attachment is None:
        return  # erased meanwhile
    caption = str(json.loads(item.text or "{}").get("caption") or "")
    assert item.user_id is not None
    chat_id = item.user_id
    sent = await bot.copy_message(
        chat_id, attachment.source_chat_id, attachment.source_message_id, caption=caption
    )
    await _copied(ctx, repo, item, request, attachment, chat_id, sent.message_id)


async def copy_to_staff(
    ctx: SendContext, bot: Bot, repo: Repositories, item: OutboxItem, request: Request | None
) -> None:
    """COPY_STAFF: the user's file copied under the card (threaded like texts)."""
    request = _the(request)
    attachment = await attachment_of(repo, item)
    if attachment is None:
        return  # erased meanwhile
    caption = str(json.loads(item.text or "{}").get("caption") or "")
    chat_id = ctx.admin_chat.id
    user = await repo.users.get(request.user_id)
    who = (user.first_name if user else None) or str(request.user_id)
    header = ctx.t(
        "attach.to_staff",
        id=request.id,
        name=escape(who),
        kind=ctx.t(f"attach.kind_{attachment.kind}"),
        size=megabytes(attachment.size),
    )
    sent = await bot.copy_message(
        chat_id,
        attachment.source_chat_id,
        attachment.source_message_id,
        caption=fit_caption(header, caption),
        message_thread_id=await ctx.topics.thread(bot, repo, request.type),
        reply_parameters=_under(request),
    )
    await _copied(ctx, repo, item, request, attachment, chat_id, sent.message_id)


async def _copied(
    ctx: SendContext,
    repo: Repositories,
    item: OutboxItem,
    request: Request,
    attachment: RequestAttachment,
    chat_id: int,
    message_id: int,
) -> None:
    attachment.copy_chat_id, attachment.copy_message_id = chat_id, message_id
    attachment.status = AttachmentStatus.RELAYED
    item.message_id = message_id
    await link(ctx, repo, chat_id, message_id, request)


async def send_card(
    ctx: SendContext, bot: Bot, repo: Repositories, item: OutboxItem, request: Request | None
) -> None:
    """CARD: a request's card posted to the admin group (into its type's topic in a forum);
    the card is this message from then on (a card sent again after a crash, too)."""
    request = _the(request)
    admin = ctx.admin_chat.id
    thread = await ctx.topics.thread(bot, repo, request.type)
    text, markup = await _card(ctx, bot, repo, request)
    await repo.commit()  # the reads end here: no transaction stays open during the call
    if ctx.clock.now() - request.received_at >= POSTED_LATE:
        when = fmt_datetime(request.received_at, ctx.t, ctx.pack.zone)
        text = ctx.t("outbox.posted_late", when=when) + "\n\n" + text
    sent = await bot.send_message(
        admin, marked(ctx, item, text), reply_markup=markup, message_thread_id=thread
    )
    request.card_message_id = item.message_id = sent.message_id
    await link(ctx, repo, admin, sent.message_id, request)


async def edit_card(
    ctx: SendContext, bot: Bot, repo: Repositories, item: OutboxItem, request: Request | None
) -> None:
    """CARD_EDIT: the card re-rendered from the request's current state."""
    request = _the(request)
    if request.card_message_id is None:
        return  # the card is not posted (or failed): nothing to bring up to date
    text, markup = await _card(ctx, bot, repo, request)
    await repo.commit()  # the reads end here: no transaction stays open during the call
    try:
        await bot.edit_message_text(
            text,
            chat_id=ctx.admin_chat.id,
            message_id=request.card_message_id,
            reply_markup=markup,
        )
    except TelegramBadRequest as error:
        if not nothing_to_edit(error):
            raise


async def send_to_staff(
    ctx: SendContext, bot: Bot, repo: Repositories, item: OutboxItem, request: Request | None
) -> None:
    """TO_STAFF: a user's message relayed under the card."""
    request = _the(request)
    assert item.text is not None
    admin = ctx.admin_chat.id
    user = await repo.users.get(request.user_id)
    who = (user.first_name if user else None) or str(request.user_id)
    text = ctx.t("card.user_wrote", id=request.id, name=escape(who), text=escape(item.text))
    thread = await ctx.topics.thread(bot, repo, request.type)
    await repo.commit()  # the reads end here: no transaction stays open during the call
    sent = await bot.send_message(
        admin,
        marked(ctx, item, text),
        message_thread_id=thread,
        reply_parameters=_under(request),
    )
    item.message_id = sent.message_id
    await link(ctx, repo, admin, sent.message_id, request)


async def send_to_owner(
    ctx: SendContext, bot: Bot, repo: Repositories, item: OutboxItem, request: Request | None
) -> None:
    """TO_OWNER: a private message to an owner of the desk (OWNER_IDS)."""
    assert item.chat_id is not None and item.text is not None
    sent = await bot.send_message(item.chat_id, item.text)
    item.message_id = sent.message_id


SENDERS: dict[OutboxKind, Sender] = {
    OutboxKind.CARD: send_card,
    OutboxKind.CARD_EDIT: edit_card,
    OutboxKind.TO_USER: send_to_user,
    OutboxKind.TO_STAFF: send_to_staff,
    OutboxKind.TO_ADMIN: send_to_admin,
    OutboxKind.NOTICE: send_to_admin,
    OutboxKind.DUE_LIST: send_due_list,
    OutboxKind.REDACT: redact,
    OutboxKind.UNRELAY: unrelay,
    OutboxKind.COPY_USER: copy_to_user,
    OutboxKind.COPY_STAFF: copy_to_staff,
    OutboxKind.TO_OWNER: send_to_owner,
    OutboxKind.SYSTEMS_ANSWER: send_systems_answer,  # bot.delivery.outbox.answer
}
