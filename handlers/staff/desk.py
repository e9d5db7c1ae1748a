"""The admin desk: the buttons on a request card (a refusal is a button per ground the pack's law
gives; a clarification beyond the agent's limit is a DPO's) and staff replies relayed to the
user; what staff type when a button asks for it is `desk_typed`'s. Every handler here declares
its staff action (`bot.telegram.staff_gate`): the check, and its audit row, come first."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Filter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, TelegramObject

from bot.core.i18n import Translator
from bot.core.policy import PolicyPack, RequestType
from bot.domain.attachments import MAX_BYTES, Refusal, attachment_of
from bot.domain.erasure import ErasureService
from bot.domain.requests.catalogue import MAX_STAFF_TEXT
from bot.domain.requests.desk import Desk, RequestOutcome
from bot.domain.requests.rules import beyond_agents, clarifications
from bot.telegram.callbacks import GroundCb, RequestAction, RequestCb
from bot.telegram.desk_prompts import (
    NOT_A_COMMAND,
    ask_for_text,
    extension_note,
    outcome_note,
)
from bot.telegram.filters import Magic, OnAction
from bot.telegram.screens import show_picker
from bot.telegram.staff_gate import callback_id, staff_action
from storage.enums import DECIDABLE, OPEN, RequestStatus
from storage.models import Request
from storage.repositories import Repositories

# Buttons that ask for a text first (a reason, a question, a hold's date); the card's "Done"
# on a restriction asks until when (RESTRICT).
NEEDS_TEXT = {
    RequestAction.REFUSE,
    RequestAction.UNFOUNDED,
    RequestAction.QUESTION,
    RequestAction.CLARIFY,
    RequestAction.EXTEND,
    RequestAction.BLOCK,
    RequestAction.RESTRICT,
}
# --- card buttons --------------------------------------------------------------------------


async def _answer(
    query: CallbackQuery, outcome: RequestOutcome, request: Request, t: Translator
) -> None:
    note = outcome_note(outcome, request, t)
    await query.answer(note, show_alert=outcome is not RequestOutcome.OK)


async def _open_card(
    query: CallbackQuery,
    callback_data: RequestCb | GroundCb,
    t: Translator,
    repo: Repositories,
    allowed: frozenset[RequestStatus] = DECIDABLE,
) -> Request | None:
    """The request a card button is for, while staff may still decide it (a request being
    carried out in the operator's systems takes only its checklist's buttons); otherwise the
    button is answered."""
    request = await repo.requests.get(callback_data.id)
    if request is None:
        await query.answer(t("common.stale_button"), show_alert=True)
        return None
    if request.status not in allowed:
        await _answer(query, RequestOutcome.CLOSED, request, t)
        return None
    return request


async def _ask_for_text(
    query: CallbackQuery,
    action: RequestAction,
    request: Request,
    bot: Bot,
    state: FSMContext,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
    **extra: str,
) -> None:
    await query.answer()
    chat_id = query.message.chat.id if query.message else 0
    await ask_for_text(
        chat_id, query.from_user, action, request, bot, state, t, pack, desk, **extra
    )


async def take_button(
    query: CallbackQuery, callback_data: RequestCb, t: Translator, desk: Desk, repo: Repositories
) -> None:
    if (request := await _open_card(query, callback_data, t, repo)) is not None:
        await _answer(query, await desk.take(request, query.from_user.id), request, t)


async def done_button(
    query: CallbackQuery,
    callback_data: RequestCb,
    bot: Bot,
    state: FSMContext,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
    erasure: ErasureService,
    repo: Repositories,
) -> None:
    """Done: an erasure erases now (with systems: once they are done), a restriction asks
    until when, the rest are decided (with systems: carried out in them)."""
    if (request := await _open_card(query, callback_data, t, repo)) is None:
        return
    if request.type == RequestType.ERASURE and desk.carried_out(request):
        await _answer(query, await desk.carry_out(request, query.from_user.id), request, t)
    elif request.type == RequestType.ERASURE:
        await _erase(query, request, bot, t, desk, erasure)
    elif request.type == RequestType.RESTRICTION:
        await _ask_for_text(query, RequestAction.RESTRICT, request, bot, state, t, pack, desk)
    else:
        await _answer(query, await desk.done(request, query.from_user.id), request, t)


async def _erase(
    query: CallbackQuery,
    request: Request,
    bot: Bot,
    t: Translator,
    desk: Desk,
    erasure: ErasureService,
) -> None:
    outcome = await desk.erase(request, query.from_user.id, erasure, bot)
    if outcome is RequestOutcome.OK:
        await query.answer()
    else:
        await _answer(query, outcome, request, t)


async def text_button(
    query: CallbackQuery,
    callback_data: RequestCb,
    bot: Bot,
    state: FSMContext,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
    repo: Repositories,
) -> None:
    """Ask, clarify, extend, block: the text comes next (an extension only if it can; one more
    clarification than an agent may ask: a DPO's reason first). An older card's Refuse and
    Unfounded buttons go through the pack's grounds."""
    if (request := await _open_card(query, callback_data, t, repo)) is None:
        return
    action = callback_data.action
    if action is RequestAction.EXTEND and (refusal := await desk.extension_refusal(request)):
        await query.answer(extension_note(refusal, request, t, pack), show_alert=True)
        return
    if action in (RequestAction.REFUSE, RequestAction.UNFOUNDED):
        ground = "unfounded" if action is RequestAction.UNFOUNDED else ""
        if not await _refuse_on(query, ground, request, bot, state, t, pack, desk):
            await desk.refresh_card(request)  # an older card: today's buttons
        return
    if action is RequestAction.CLARIFY and beyond_agents(pack, await clarifications(repo, request)):
        action = RequestAction.RECLARIFY
    await _ask_for_text(query, action, request, bot, state, t, pack, desk)


async def ground_button(
    query: CallbackQuery,
    callback_data: GroundCb,
    bot: Bot,
    state: FSMContext,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
    repo: Repositories,
) -> None:
    """A refusal on the ground pressed: its explanation comes next."""
    if (request := await _open_card(query, callback_data, t, repo)) is not None:
        await _refuse_on(query, callback_data.ground, request, bot, state, t, pack, desk)


async def _refuse_on(
    query: CallbackQuery,
    ground: str,
    request: Request,
    bot: Bot,
    state: FSMContext,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
) -> bool:
    """Only a ground the pack's law gives for the request's type: any other (forged, another
    law's, an older card's button) is answered and changes nothing. True when asked."""
    if pack.ground(request.type, ground) is None:
        await query.answer(t("card.rule_no_ground", id=request.id), show_alert=True)
        return False
    await _ask_for_text(
        query, RequestAction.REFUSE, request, bot, state, t, pack, desk, ground=ground
    )
    return True


async def template_button(
    query: CallbackQuery, callback_data: RequestCb, bot: Bot, t: Translator, repo: Repositories
) -> None:
    if (request := await _open_card(query, callback_data, t, repo, OPEN)) is not None:
        await show_picker(query, bot, request, t, repo)


async def lift_button(
    query: CallbackQuery, callback_data: RequestCb, t: Translator, desk: Desk, repo: Repositories
) -> None:
    """Lift an approved restriction before its date (the request itself is closed)."""
    request = await repo.requests.get(callback_data.id)
    if request is None:
        await query.answer(t("common.stale_button"), show_alert=True)
        return
    await _answer(query, await desk.lift(request, query.from_user.id), request, t)


# --- replies to cards ----------------------------------------------------------------------


class OnCard(Filter):
    """A staff reply to one of this bot's messages in the group: passes on the request it
    belongs to as `request` (`linked=False`: the message belongs to none)."""

    def __init__(self, *, linked: bool) -> None:
        self.linked = linked

    async def __call__(
        self, message: Message, bot: Bot, repo: Repositories
    ) -> dict[str, Request] | bool:
        assert message.reply_to_message is not None
        author = message.reply_to_message.from_user
        if author is None or author.id != bot.id:
            return False  # a reply to another bot in the group is not for us
        chat_id, replied_to = message.chat.id, message.reply_to_message.message_id
        request = await repo.requests.by_message(chat_id, replied_to)
        if request is None:
            return not self.linked
        return {"request": request} if self.linked else False


async def not_linked(message: Message, t: Translator) -> None:
    await message.reply(t("card.not_linked"))


async def staff_reply(message: Message, request: Request, t: Translator, desk: Desk) -> None:
    """A reply to a card or to a relayed user message goes to that user."""
    assert message.from_user is not None
    if request.status not in OPEN:
        await message.reply(t("card.closed", id=request.id))
        return
    if message.text and len(message.text) > MAX_STAFF_TEXT:
        await message.reply(t("card.too_long", length=len(message.text), limit=MAX_STAFF_TEXT))
        return
    found = None if message.text else attachment_of(message)
    if isinstance(found, Refusal):
        await message.reply(t(f"attach.refused_{found}", limit=MAX_BYTES // 1024 // 1024))
        return
    # "Queued" now; the outbox edits it to "Sent to the user" once the user has it.
    queued = await message.reply(t("card.relay_queued", id=request.id))
    staff_id, confirm = message.from_user.id, queued.message_id
    if found is None:
        await desk.staff_reply(request, staff_id, message.text or "", confirm_message_id=confirm)
        return
    where = (message.chat.id, message.message_id, message.caption)
    await desk.staff_attachment(request, staff_id, found, *where, confirm_message_id=confirm)


async def _clarify_start(_: TelegramObject, data: dict[str, Any]) -> str:
    """The audit name of Clarify: beyond the clarifications an agent may ask, a DPO's action."""
    repo: Repositories = data["repo"]
    request = await repo.requests.get(data["callback_data"].id)
    if request is not None and beyond_agents(data["pack"], await clarifications(repo, request)):
        return "request.clarify_again.start"
    return "request.clarify.start"


async def _clarify_explain(_: TelegramObject, data: dict[str, Any]) -> str:
    """Why Clarify needs a DPO here, said before the role the gate names (nothing when the
    limit is not what refused it: a marketing member's first press)."""
    repo, t = data["repo"], data["t"]
    request = await repo.requests.get(data["callback_data"].id)
    if request is None or not beyond_agents(data["pack"], await clarifications(repo, request)):
        return ""
    return t("card.rule_clarify_limit", id=request.id)


def _card_reply_subject(_: TelegramObject, data: dict[str, Any]) -> str:
    request: Request = data["request"]
    return str(request.id)


def _card_button(r: Router, handler: Any, *actions: RequestAction, start: bool = False) -> None:
    """One card action (or several that ask for a text first: their action ends in .start)."""
    for action in actions:
        name = f"request.{action}" + (".start" if start else "")
        r.callback_query.register(
            handler,
            OnAction(RequestCb, action),
            flags=staff_action(name, subject=callback_id),
        )


def router() -> Router:
    r = Router(name="desk")
    _card_button(r, take_button, RequestAction.TAKE)
    _card_button(r, done_button, RequestAction.DONE)
    _card_button(r, lift_button, RequestAction.LIFT)
    _card_button(r, template_button, RequestAction.TEMPLATE)
    _card_button(r, text_button, *sorted(NEEDS_TEXT - {RequestAction.CLARIFY}), start=True)
    clarify = staff_action(_clarify_start, subject=callback_id, explain=_clarify_explain)
    r.callback_query.register(
        text_button, OnAction(RequestCb, RequestAction.CLARIFY), flags=clarify
    )
    refuse = staff_action("request.refuse.start", subject=callback_id)
    r.callback_query.register(ground_button, GroundCb.filter(), flags=refuse)
    to_bot = (Magic(F.reply_to_message.from_user.is_bot), NOT_A_COMMAND)
    reply = staff_action("request.reply", subject=_card_reply_subject)
    r.message.register(staff_reply, *to_bot, OnCard(linked=True), flags=reply)
    r.message.register(not_linked, *to_bot, OnCard(linked=False))
    return r
