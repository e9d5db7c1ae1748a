"""What a user sends about one of their open requests once it is filed: a reply to a message
the bot relayed for it, an answer to staff's question, a file."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters import Filter, StateFilter
from aiogram.types import Message

from bot.core.formatting import fmt_date
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from bot.domain.attachments import MAX_BYTES, Refusal, attachment_of
from bot.domain.requests.catalogue import MAX_TEXT
from bot.domain.requests.desk import Desk
from bot.telegram.filters import Magic
from storage.enums import OPEN, RequestStatus
from storage.models import Request, User
from storage.repositories import Repositories


class OnRequest(Filter):
    """A user's message about one of their own requests: a reply to a message the bot relayed
    for that request, or any text while a request waits for their clarification."""

    async def __call__(
        self, message: Message, user: User | None = None, repo: Repositories | None = None
    ) -> bool | dict[str, Any]:
        if user is None or repo is None or (message.text or "").startswith("/"):
            return False
        request: Request | None = None
        if message.reply_to_message is not None:
            request = await repo.requests.by_message(
                message.chat.id, message.reply_to_message.message_id
            )
        if request is None:
            request = await repo.requests.waiting_for(user.id)
        if request is None or request.user_id != user.id:
            return False
        return {"request": request}


async def followup(
    message: Message,
    request: Request,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
) -> None:
    assert message.text is not None
    if request.status not in OPEN:
        await message.answer(t("requests.closed", id=request.id))
        return
    if len(message.text) > MAX_TEXT:
        await message.answer(t("flow.too_long", length=len(message.text), limit=MAX_TEXT))
        return
    was_waiting, due_before = request.status == RequestStatus.WAITING, request.due_at
    await desk.user_message(request, message.text)
    if was_waiting:
        due = fmt_date(request.due_at, t, pack.zone)
        # "New due date" only when the answer moved it (a clarification), not after a question.
        moved = request.due_at != due_before
        key = "requests.answer_sent" if moved else "requests.answer_sent_same"
        await message.answer(t(key, id=request.id, due=due))
    else:
        await message.answer(t("requests.followup_sent", id=request.id))


async def attachment(message: Message, request: Request, t: Translator, desk: Desk) -> None:
    """A file (or anything else that is not text) on one of the user's requests."""
    if request.status not in OPEN:
        await message.answer(t("requests.closed", id=request.id))
        return
    found = attachment_of(message)
    if isinstance(found, Refusal):
        await message.answer(t(f"attach.refused_{found}", limit=MAX_BYTES // 1024 // 1024))
        return
    await desk.user_attachment(request, found, message.chat.id, message.message_id, message.caption)
    await message.answer(t("attach.sent", id=request.id))


def router() -> Router:
    r = Router(name="followups")
    r.message.register(followup, StateFilter(None), Magic(F.text), OnRequest())
    r.message.register(attachment, StateFilter(None), OnRequest())
    return r
