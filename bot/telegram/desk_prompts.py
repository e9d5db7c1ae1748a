"""What staff are asked after a card button, and told when an action did not apply: the
prompt for a reason, question or date (with its effect on the due date, or the refusal's
ground and article), and the conversation state that waits for the answer. Used by the desk's
buttons and by what staff type next (`handlers.staff.desk`, `handlers.staff.desk_typed`)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from aiogram import Bot, F
from aiogram.filters import Filter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import ForceReply, Message
from aiogram.types import User as TgUser

from bot.core.formatting import fmt_date
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from bot.domain.requests.catalogue import MAX_REASON
from bot.domain.requests.desk import Desk, RequestOutcome
from bot.domain.requests.rules import NoExtension, extend_by, extended_due
from bot.telegram.callbacks import RequestAction
from bot.telegram.filters import Magic
from storage.models import Request

NOT_A_COMMAND = Magic(~F.text.startswith("/"))


class StaffInput(StatesGroup):
    text = State()


@dataclass(frozen=True)
class Typed:
    """A reason, question or hold typed for `action` on request `request_id`."""

    action: RequestAction
    request_id: int
    text: str
    ground: str = ""  # a refusal: the pack's ground picked on the card
    beyond: str | None = None  # a clarification beyond the agent's limit: the DPO's reason
    job: int = 0  # a system done by hand: its job


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
        ground = str(
            data.get("ground") or ("unfounded" if action is RequestAction.UNFOUNDED else "")
        )
        beyond = data.get("beyond")
        job = int(data.get("job") or 0)
        return {"typed": Typed(action, request_id, text, ground, beyond, job)}


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


def prompt_text(
    action: RequestAction,
    request: Request,
    who: str,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
    **extra: str,
) -> str:
    """What staff are asked for; for date-changing actions, the effect on the due date first;
    a refusal names its ground and article."""
    due = fmt_date(request.due_at, t, pack.zone)
    key, new_due, more = f"card.prompt_{action.name.lower()}", due, {}
    if action in (RequestAction.CLARIFY, RequestAction.RECLARIFY):
        effect = desk.clarify_effect(request)
        key = f"{key}_{effect.rule}"
        new_due = fmt_date(effect.if_answered_now, t, pack.zone)
    elif action is RequestAction.EXTEND:
        new_due = fmt_date(extended_due(pack, request), t, pack.zone)
    elif action is RequestAction.TICK:
        more = {"system": escape(extra.get("system", ""))}
    elif (ground := pack.ground(request.type, extra.get("ground", ""))) is not None:
        more = {"ground": ground.title.get(t.locale), "article": ground.article.get(t.locale)}
    return t(key, staff=who, id=request.id, due=due, new_due=new_due, **more)


def extension_note(refusal: NoExtension, request: Request, t: Translator, pack: PolicyPack) -> str:
    """Why the term of `request` cannot be extended, with the last day it could have been."""
    until = fmt_date(extend_by(pack, request), t, pack.zone)
    return t(f"card.extend_{refusal}", id=request.id, until=until)


async def ask_for_text(
    chat_id: int,
    person: TgUser,
    action: RequestAction,
    request: Request,
    bot: Bot,
    state: FSMContext,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
    **extra: str,
) -> None:
    """The reason, question or date, asked of `person`, the staff member who pressed the button;
    `extra` (a refusal's ground, a DPO's reason for one more clarification) is kept with it."""
    await state.set_state(StaffInput.text)
    await state.set_data({"id": request.id, "action": action, **extra})
    who = f'<a href="tg://user?id={person.id}">{escape(person.first_name)}</a>'
    text = prompt_text(action, request, who, t, pack, desk, **extra)
    await bot.send_message(chat_id, text, reply_markup=ForceReply(selective=True))
