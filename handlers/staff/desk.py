"""The admin desk: the buttons on a request card, the reasons, questions and holds staff type
when a button asks for one, and staff replies relayed to the user. Every handler here declares
its staff action (`bot.telegram.staff_gate`): the check, and its audit row, come first."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Filter, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, ForceReply, Message, TelegramObject

from bot.core.clock import Clock
from bot.core.deadlines import add_months
from bot.core.formatting import fmt_date
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack, RequestType
from bot.domain.attachments import MAX_BYTES, Refusal, attachment_of
from bot.domain.dates import parse_hold, parse_until
from bot.domain.erasure import ErasureService
from bot.domain.requests.catalogue import MAX_REASON, MAX_STAFF_TEXT
from bot.domain.requests.desk import Desk, RequestOutcome
from bot.domain.requests.filing import NoExtension
from bot.telegram.callbacks import RequestAction, RequestCb
from bot.telegram.filters import Magic, OnAction
from bot.telegram.screens import show_picker
from bot.telegram.staff_gate import callback_id, staff_action
from storage.enums import OPEN
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
NOT_A_COMMAND = Magic(~F.text.startswith("/"))


class StaffInput(StatesGroup):
    text = State()


# --- card buttons --------------------------------------------------------------------------


def outcome_note(outcome: RequestOutcome, request: Request, t: Translator) -> str | None:
    """What a staff member is told when their action did not apply, and why."""
    if outcome is RequestOutcome.OK:
        return None
    if outcome is RequestOutcome.DECIDED or request.handled_by is not None:
        return t(
            "card.already_decided",
            id=request.id,
            status=t(f"requests.status_{request.status}"),
            staff=request.handled_by,
        )
    return t("card.closed", id=request.id)


async def _answer(
    query: CallbackQuery, outcome: RequestOutcome, request: Request, t: Translator
) -> None:
    note = outcome_note(outcome, request, t)
    await query.answer(note, show_alert=outcome is not RequestOutcome.OK)


async def _open_card(
    query: CallbackQuery, callback_data: RequestCb, t: Translator, repo: Repositories
) -> Request | None:
    """The request a card button is for, while it is open; otherwise the button is answered."""
    request = await repo.requests.get(callback_data.id)
    if request is None:
        await query.answer(t("common.stale_button"), show_alert=True)
        return None
    if request.status not in OPEN:
        await _answer(query, RequestOutcome.CLOSED, request, t)
        return None
    return request


def prompt_text(
    action: RequestAction, request: Request, who: str, t: Translator, pack: PolicyPack, desk: Desk
) -> str:
    """What staff are asked for; for date-changing actions, the effect on the due date first."""
    due = fmt_date(request.due_at, t, pack.zone)
    key, new_due = f"card.prompt_{action.name.lower()}", due
    if action is RequestAction.CLARIFY:
        effect = desk.clarify_effect(request)
        key = f"card.prompt_clarify_{effect.rule}"
        new_due = fmt_date(effect.if_answered_now, t, pack.zone)
    elif action is RequestAction.EXTEND:
        new_due = fmt_date(add_months(request.due_at, pack.requests.extension_months), t, pack.zone)
    return t(key, staff=who, id=request.id, due=due, new_due=new_due)


async def _ask_for_text(
    query: CallbackQuery,
    action: RequestAction,
    request: Request,
    bot: Bot,
    state: FSMContext,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
) -> None:
    """The reason, question or date, asked of the staff member who pressed the button."""
    await state.set_state(StaffInput.text)
    await state.set_data({"id": request.id, "action": action})
    await query.answer()
    who = f'<a href="tg://user?id={query.from_user.id}">{escape(query.from_user.first_name)}</a>'
    await bot.send_message(
        query.message.chat.id if query.message else 0,
        prompt_text(action, request, who, t, pack, desk),
        reply_markup=ForceReply(selective=True),
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
    """Done: an erasure erases now, a restriction asks until when, the rest are decided."""
    if (request := await _open_card(query, callback_data, t, repo)) is None:
        return
    if request.type == RequestType.ERASURE:
        await _erase(query, request, bot, t, desk, erasure, repo)
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
    repo: Repositories,
) -> None:
    key = await erasure.execute(
        bot,
        request.user_id,
        cause=f"request {request.id}",
        notice="requests.erased",
        claim=desk.erasure_claim(request, query.from_user.id),
    )
    if key is None:
        request = await repo.requests.get(request.id) or request
        await _answer(query, RequestOutcome.DECIDED, request, t)
    else:
        await query.answer()


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
    """Refuse, ask, clarify, extend, block: the text comes next (an extension only if it can)."""
    if (request := await _open_card(query, callback_data, t, repo)) is None:
        return
    action = callback_data.action
    if action is RequestAction.EXTEND and (refusal := await desk.extension_refusal(request)):
        await query.answer(t(f"card.extend_{refusal}", id=request.id), show_alert=True)
        return
    await _ask_for_text(query, action, request, bot, state, t, pack, desk)


async def template_button(
    query: CallbackQuery, callback_data: RequestCb, bot: Bot, t: Translator, repo: Repositories
) -> None:
    if (request := await _open_card(query, callback_data, t, repo)) is not None:
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


# --- what staff type after a button --------------------------------------------------------


@dataclass(frozen=True)
class Typed:
    """A reason, question or hold typed for `action` on request `request_id`."""

    action: RequestAction
    request_id: int
    text: str


class TypedFor(Filter):
    """The text a staff member was asked for, if it can be taken (not empty, not too long),
    for one of `actions`: passed on as `typed`. Taken or not, it is checked before the audit."""

    def __init__(self, *actions: RequestAction) -> None:
        self.actions = actions

    async def __call__(self, message: Message, state: FSMContext) -> dict[str, Typed] | bool:
        data = await state.get_data()
        action, request_id = RequestAction(data["action"]), int(data["id"])
        text = (message.text or "").strip()
        if not text or len(text) > MAX_REASON or action not in self.actions:
            return False
        return {"typed": Typed(action, request_id, text)}


async def untyped(message: Message, t: Translator) -> None:
    """An empty or too long text: asked again, nothing audited, the question still open."""
    text = (message.text or "").strip()
    if not text:
        await message.reply(t("card.empty"))
    else:
        await message.reply(t("card.too_long", length=len(text), limit=MAX_REASON))


async def _taken(typed: Typed, state: FSMContext, repo: Repositories) -> Request | None:
    """The request the text is for; the question is closed (a bad date asks again)."""
    request = await repo.requests.get(typed.request_id)
    await state.clear()
    return request


async def _ask_again(message: Message, typed: Typed, state: FSMContext, text: str) -> None:
    await state.set_state(StaffInput.text)
    await state.set_data({"id": typed.request_id, "action": typed.action})
    await message.reply(text, reply_markup=ForceReply(selective=True))


async def _report(
    message: Message, outcome: RequestOutcome | NoExtension, request: Request, t: Translator
) -> None:
    if isinstance(outcome, NoExtension):
        await message.reply(t(f"card.extend_{outcome}", id=request.id))
    elif (note := outcome_note(outcome, request, t)) is not None:
        await message.reply(note)


async def typed_hold(
    message: Message,
    typed: Typed,
    state: FSMContext,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    desk: Desk,
    repo: Repositories,
) -> None:
    """'31.12.2027 reason': a legal hold until then."""
    assert message.from_user is not None
    if (request := await _taken(typed, state, repo)) is None:
        return
    hold = parse_hold(typed.text, pack, clock.now())
    if hold is None:
        await _ask_again(message, typed, state, t("card.bad_date"))
        return
    await _report(message, await desk.block(request, message.from_user.id, *hold), request, t)


async def typed_until(
    message: Message,
    typed: Typed,
    state: FSMContext,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    desk: Desk,
    repo: Repositories,
) -> None:
    """A restriction approved until a day, or '-': until lifted."""
    assert message.from_user is not None
    if (request := await _taken(typed, state, repo)) is None:
        return
    until = parse_until(typed.text, pack, clock.now())
    if until is None:
        await _ask_again(message, typed, state, t("card.bad_until"))
        return
    await _report(message, await desk.restrict(request, message.from_user.id, until), request, t)


async def typed_reason(
    message: Message,
    typed: Typed,
    state: FSMContext,
    t: Translator,
    desk: Desk,
    repo: Repositories,
) -> None:
    """A refusal's reason, a question, a clarification's reason or an extension's reason."""
    assert message.from_user is not None
    if (request := await _taken(typed, state, repo)) is None:
        return
    staff_id, text = message.from_user.id, typed.text
    match typed.action:
        case RequestAction.REFUSE | RequestAction.UNFOUNDED:
            unfounded = typed.action is RequestAction.UNFOUNDED
            outcome = await desk.refuse(request, staff_id, text, unfounded=unfounded)
        case RequestAction.CLARIFY:
            outcome = await desk.clarify(request, staff_id, text)
        case RequestAction.EXTEND:
            outcome = await desk.extend(request, staff_id, text)
        case _:
            outcome = await desk.question(request, staff_id, text)
    await _report(message, outcome, request, t)


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


def _typed_action(_: TelegramObject, data: dict[str, Any]) -> str:
    typed: Typed = data["typed"]
    return f"request.{typed.action}"


def _typed_subject(_: TelegramObject, data: dict[str, Any]) -> str:
    typed: Typed = data["typed"]
    return str(typed.request_id)


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
    _card_button(r, text_button, *sorted(NEEDS_TEXT), start=True)
    typed = staff_action(_typed_action, subject=_typed_subject, forget_input=True)
    asked = (StateFilter(StaffInput.text), NOT_A_COMMAND)
    r.message.register(typed_hold, *asked, TypedFor(RequestAction.BLOCK), flags=typed)
    r.message.register(typed_until, *asked, TypedFor(RequestAction.RESTRICT), flags=typed)
    reasons = TypedFor(
        RequestAction.REFUSE,
        RequestAction.UNFOUNDED,
        RequestAction.CLARIFY,
        RequestAction.EXTEND,
        RequestAction.QUESTION,
    )
    r.message.register(typed_reason, *asked, reasons, flags=typed)
    r.message.register(untyped, *asked)
    to_bot = (Magic(F.reply_to_message.from_user.is_bot), NOT_A_COMMAND)
    reply = staff_action("request.reply", subject=_card_reply_subject)
    r.message.register(staff_reply, *to_bot, OnCard(linked=True), flags=reply)
    r.message.register(not_linked, *to_bot, OnCard(linked=False))
    return r
