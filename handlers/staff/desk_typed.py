"""What staff type after a card button asked for it: a refusal's explanation, a question, a
clarification (and a DPO's reason for one beyond the agent's limit), an extension's reason, a
hold's date, a restriction's end. Each is checked (not empty, not too long) before the staff
gate audits it. Registered before the desk's replies to cards: the text is a reply to the
bot's prompt, which no request is linked to."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import ForceReply, Message, TelegramObject

from bot.core.clock import Clock
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from bot.domain.dates import parse_hold, parse_until
from bot.domain.requests.catalogue import MAX_REASON
from bot.domain.requests.desk import Desk, RequestOutcome
from bot.domain.requests.rules import DeskRule, NoExtension
from bot.telegram.callbacks import RequestAction
from bot.telegram.desk_prompts import (
    NOT_A_COMMAND,
    StaffInput,
    Typed,
    TypedFor,
    ask_for_text,
    extension_note,
    outcome_note,
)
from bot.telegram.staff_gate import staff_action
from storage.enums import DECIDABLE
from storage.models import Request
from storage.repositories import Repositories


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
    message: Message,
    outcome: RequestOutcome | NoExtension | DeskRule,
    request: Request,
    t: Translator,
    pack: PolicyPack,
) -> None:
    if isinstance(outcome, NoExtension):
        await message.reply(extension_note(outcome, request, t, pack))
    elif isinstance(outcome, DeskRule):
        await message.reply(t(f"card.rule_{outcome}", id=request.id))
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
    outcome = await desk.block(request, message.from_user.id, *hold)
    await _report(message, outcome, request, t, pack)


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
    outcome = await desk.restrict(request, message.from_user.id, until)
    await _report(message, outcome, request, t, pack)


async def typed_reason(
    message: Message,
    typed: Typed,
    state: FSMContext,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
    repo: Repositories,
) -> None:
    """A refusal's explanation (on the ground picked), a question, a clarification or an
    extension's reason."""
    assert message.from_user is not None
    if (request := await _taken(typed, state, repo)) is None:
        return
    staff_id, text = message.from_user.id, typed.text
    outcome: RequestOutcome | NoExtension | DeskRule
    match typed.action:
        case RequestAction.REFUSE | RequestAction.UNFOUNDED:
            outcome = await desk.refuse(request, staff_id, text, typed.ground)
        case RequestAction.CLARIFY:
            outcome = await desk.clarify(request, staff_id, text, beyond=typed.beyond)
        case RequestAction.EXTEND:
            outcome = await desk.extend(request, staff_id, text)
        case _:
            outcome = await desk.question(request, staff_id, text)
    await _report(message, outcome, request, t, pack)


async def typed_beyond(
    message: Message,
    typed: Typed,
    bot: Bot,
    state: FSMContext,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
    repo: Repositories,
) -> None:
    """A DPO's reason for a clarification beyond the agent's limit: kept with the question,
    then the clarification itself is asked for (it is recorded with it)."""
    assert message.from_user is not None
    if (request := await _taken(typed, state, repo)) is None:
        return
    if request.status not in DECIDABLE:
        await message.reply(t("card.closed", id=request.id))
        return
    await ask_for_text(
        message.chat.id,
        message.from_user,
        RequestAction.CLARIFY,
        request,
        bot,
        state,
        t,
        pack,
        desk,
        beyond=typed.text,
    )


def _typed_action(_: TelegramObject, data: dict[str, Any]) -> str:
    """The audit name; a clarification beyond the agent's limit, and its reason, need a DPO."""
    typed: Typed = data["typed"]
    if typed.action is RequestAction.RECLARIFY:
        return "request.clarify_again.reason"
    if typed.action is RequestAction.CLARIFY and typed.beyond:
        return "request.clarify_again"
    return f"request.{typed.action}"


def _typed_subject(_: TelegramObject, data: dict[str, Any]) -> str:
    typed: Typed = data["typed"]
    return str(typed.request_id)


def router() -> Router:
    r = Router(name="desk_typed")
    typed = staff_action(_typed_action, subject=_typed_subject, forget_input=True)
    asked = (StateFilter(StaffInput.text), NOT_A_COMMAND)
    r.message.register(typed_hold, *asked, TypedFor(RequestAction.BLOCK), flags=typed)
    r.message.register(typed_until, *asked, TypedFor(RequestAction.RESTRICT), flags=typed)
    r.message.register(typed_beyond, *asked, TypedFor(RequestAction.RECLARIFY), flags=typed)
    reasons = TypedFor(
        RequestAction.REFUSE,
        RequestAction.UNFOUNDED,
        RequestAction.CLARIFY,
        RequestAction.EXTEND,
        RequestAction.QUESTION,
    )
    r.message.register(typed_reason, *asked, reasons, flags=typed)
    r.message.register(untyped, *asked)
    return r
