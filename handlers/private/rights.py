"""/rights: a short guided flow per request type (a question a step, buttons for choices),
contact verification, confirmation and filing."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, Filter, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove

from bot.core.formatting import appeal_text, contact_line, fmt_date, months_cap
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack, RequestType
from bot.domain.attachments import MAX_BYTES, Refusal, attachment_of
from bot.domain.consents import Consents, Source
from bot.domain.onboarding import Onboarding
from bot.domain.requests.catalogue import (
    FIELD_CHOICES,
    FILED,
    MAX_FLOW_FILES,
    MAX_TEXT,
    QUESTIONS,
    Question,
    kept_file,
    objection_choices,
    offered,
)
from bot.domain.requests.desk import Desk
from bot.domain.requests.filing import needs_phone
from bot.telegram import keyboards
from bot.telegram.callbacks import RightsAction, RightsCb
from bot.telegram.filters import Magic, OnAction
from bot.telegram.screens import consent_screen, send_export, send_menu, show_screen
from storage.models import User
from storage.repositories import Repositories


class RightsFlow(StatesGroup):
    contact = State()
    answer = State()
    confirm = State()


CHOICE_KEYS = ("field", "processing")


def choice_labels(key: str, t: Translator, pack: PolicyPack) -> list[tuple[str, str]]:
    """The answers offered as buttons: which data to correct, which processing to object to."""
    if key == "field":
        return [(value, t(f"detail.field_{value}")) for value in FIELD_CHOICES]
    return [
        (pid, purpose.title.get(t.locale))
        for pid in objection_choices(pack)
        if (purpose := pack.purpose(pid)) is not None
    ]


def _question_text(kind: RequestType, key: str, t: Translator) -> str:
    return t(f"flow.q_{key}_{kind}") if key == "reason" else t(f"flow.q_{key}")


@dataclass(frozen=True)
class Flow:
    """A request being filed, as the conversation state keeps it."""

    kind: RequestType
    step: int
    answers: dict[str, str]
    files: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, data: dict[str, Any]) -> Flow:
        kind = RequestType(data["type"])
        files = list(data.get("files", []))
        return cls(kind, int(data["step"]), dict(data["answers"]), files)

    @property
    def question(self) -> Question | None:
        """The question now asked; None once all are answered."""
        questions = QUESTIONS[self.kind]
        return questions[self.step] if self.step < len(questions) else None


class InFlow(Filter):
    """A button pressed while a request is being filed: passes on the flow as `flow`."""

    async def __call__(self, _: CallbackQuery, state: FSMContext) -> dict[str, Flow] | bool:
        if await state.get_state() not in (
            RightsFlow.answer,
            RightsFlow.confirm,
            RightsFlow.contact,
        ):
            return False
        return {"flow": Flow.of(await state.get_data())}


async def ask_step(
    bot: Bot, user: User, state: FSMContext, t: Translator, pack: PolicyPack, desk: Desk
) -> None:
    """Show the current question, or the confirmation screen after the last one."""
    flow = Flow.of(await state.get_data())
    if (question := flow.question) is not None:
        choices = choice_labels(question.key, t, pack) if question.choices else None
        await state.set_state(RightsFlow.answer)
        await bot.send_message(
            user.id,
            _question_text(flow.kind, question.key, t),
            reply_markup=keyboards.flow_step(t, choices=choices, optional=question.optional),
        )
        return
    await state.set_state(RightsFlow.confirm)
    details = []
    for key, value in flow.answers.items():
        labels = dict(choice_labels(key, t, pack)) if key in CHOICE_KEYS else {}
        details.append(f"{t(f'detail.{key}')}: {escape(labels.get(value, value))}")
    deadline = pack.deadlines[flow.kind]
    text = t(
        "flow.confirm",
        type=t(f"rights.{flow.kind}"),
        details="\n".join(details) or t("flow.no_details"),
        due=fmt_date(desk.due(flow.kind, desk.now()), t, pack.zone),
        days=deadline.days,
        kind=t(f"flow.days_{deadline.kind}", days=deadline.days) + months_cap(deadline, t),
    )
    await bot.send_message(user.id, text, reply_markup=keyboards.flow_confirm(t))


async def rights_command(
    message: Message, state: FSMContext, user: User | None, t: Translator, pack: PolicyPack
) -> None:
    if user is None or user.age_group is None:
        await message.answer(t("common.start_first"))
        return
    await state.clear()
    await message.answer(t("flow.title"), reply_markup=keyboards.rights(offered(pack), t))


async def _started(query: CallbackQuery, user: User | None, t: Translator) -> User | None:
    """The sender, once past the age gate; otherwise the button says to start first."""
    if user is None or user.age_group is None:
        await query.answer(t("common.start_first"), show_alert=True)
        return None
    return user


async def pick_button(
    query: CallbackQuery,
    callback_data: RightsCb,
    bot: Bot,
    state: FSMContext,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
    consents: Consents,
    repo: Repositories,
) -> None:
    """A request type from /rights: its flow starts (a withdrawal shows /consents)."""
    if (user := await _started(query, user, t)) is None:
        return
    await pick(query, callback_data.value, bot, state, user, t, pack, desk)
    if callback_data.value == RequestType.WITHDRAWAL:
        text, markup = await consent_screen(user, user, t, pack, consents, repo)
        await bot.send_message(user.id, text, reply_markup=markup)


async def not_in_flow(query: CallbackQuery, user: User | None, t: Translator) -> None:
    """A flow's button after the flow ended (filed, cancelled, or an old message)."""
    if await _started(query, user, t) is not None:
        await query.answer(t("common.stale_button"), show_alert=True)


async def cancel_button(
    query: CallbackQuery,
    bot: Bot,
    state: FSMContext,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    onboarding: Onboarding,
) -> None:
    if (user := await _started(query, user, t)) is None:
        return
    await query.answer()
    await state.clear()
    await bot.send_message(user.id, t("flow.cancelled"), reply_markup=ReplyKeyboardRemove())
    await send_menu(bot, user, t, pack, onboarding)


async def back_button(
    query: CallbackQuery,
    flow: Flow,
    bot: Bot,
    state: FSMContext,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
) -> None:
    """One question back (its answer forgotten); from the first, the list of rights."""
    if (user := await _started(query, user, t)) is None:
        return
    await query.answer()
    if flow.step == 0:
        await state.clear()
        await show_screen(query, bot, t("flow.title"), keyboards.rights(offered(pack), t))
        return
    answers = dict(flow.answers)
    answers.pop(QUESTIONS[flow.kind][flow.step - 1].key, None)
    await state.update_data(step=flow.step - 1, answers=answers)
    await ask_step(bot, user, state, t, pack, desk)


async def submit_button(
    query: CallbackQuery,
    flow: Flow,
    bot: Bot,
    state: FSMContext,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
    consents: Consents,
    repo: Repositories,
) -> None:
    if (user := await _started(query, user, t)) is None:
        return
    await query.answer()
    await state.clear()  # before filing: a double tap finds no flow and files nothing
    await submit(bot, user, flow, t, pack, desk, consents, repo)


async def skip_button(
    query: CallbackQuery,
    flow: Flow,
    bot: Bot,
    state: FSMContext,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
) -> None:
    if (user := await _started(query, user, t)) is None:
        return
    await query.answer()
    if flow.question is None or not flow.question.optional:
        await bot.send_message(user.id, t("common.use_buttons"))
        return
    await state.update_data(step=flow.step + 1)
    await ask_step(bot, user, state, t, pack, desk)


async def choice_button(
    query: CallbackQuery,
    callback_data: RightsCb,
    flow: Flow,
    bot: Bot,
    state: FSMContext,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
) -> None:
    """An answer given with a button (which data to correct, which processing)."""
    if (user := await _started(query, user, t)) is None:
        return
    await query.answer()
    question = flow.question
    if question is None or not question.choices:
        await bot.send_message(user.id, t("common.use_buttons"))
        return
    if callback_data.value not in dict(choice_labels(question.key, t, pack)):
        await bot.send_message(user.id, t("common.stale_button"))
        return
    answers = {**flow.answers, question.key: callback_data.value}
    await state.update_data(step=flow.step + 1, answers=answers)
    await ask_step(bot, user, state, t, pack, desk)


async def use_buttons(query: CallbackQuery, bot: Bot, user: User | None, t: Translator) -> None:
    """Any other button of the flow, at a step where it means nothing."""
    if (user := await _started(query, user, t)) is None:
        return
    await query.answer()
    await bot.send_message(user.id, t("common.use_buttons"))


async def submit(
    bot: Bot,
    user: User,
    flow: Flow,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
    consents: Consents,
    repo: Repositories,
) -> None:
    """File the request; what the user can have at once, they get at once."""
    kind, answers = flow.kind, flow.answers
    marketing = pack.marketing.purpose if pack.marketing else None
    if kind is RequestType.OBJECTION and answers.get("processing") == marketing:
        assert marketing is not None
        await consents.set(
            user.id,
            marketing,
            False,
            source=Source.OBJECTION,
            actor_id=user.id,
            locale=t.locale,
            shown_text=t("requests.objection_marketing", id=0),
        )
        request = await desk.object_to_marketing(user, answers)
        await bot.send_message(user.id, t("requests.objection_marketing", id=request.id))
        return
    if await show_open(bot, user, kind, t, pack, desk):
        return  # filed meanwhile (another tap, another device)
    request = await desk.file(user, kind, answers, flow.files)
    due = fmt_date(request.due_at, t, pack.zone)
    received = await bot.send_message(
        user.id, t("flow.received", id=request.id, type=t(f"rights.{kind}"), due=due)
    )
    await desk.remember(user.id, received.message_id, request)
    if kind in (RequestType.ACCESS, RequestType.PORTABILITY):
        await send_export(bot, user, t, pack, repo, desk, report=kind is RequestType.ACCESS)


async def show_open(
    bot: Bot, user: User, kind: RequestType, t: Translator, pack: PolicyPack, desk: Desk
) -> bool:
    """A second request of a type while one is open: show the open one, file nothing."""
    request = await desk.open_of_type(user.id, kind)
    if request is None:
        return False
    text = t(
        "requests.duplicate",
        id=request.id,
        type=t(f"rights.{kind}"),
        due=fmt_date(request.due_at, t, pack.zone),
        status=t(f"requests.status_{request.status}"),
    )
    await bot.send_message(user.id, text)
    return True


async def pick(
    query: CallbackQuery,
    value: str,
    bot: Bot,
    state: FSMContext,
    user: User,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
) -> None:
    if value not in offered(pack):
        await query.answer(t("common.stale_button"), show_alert=True)
        return
    await query.answer()
    kind = RequestType(value)
    if kind is RequestType.COMPLAINT:
        authority = pack.operator.authority
        text = t(
            "flow.complaint",
            term=escape(pack.terms.authority.get(t.locale)),
            authority=escape(authority.name.get(t.locale)),
            contacts=contact_line(authority.contacts, t.locale),
            appeal=appeal_text(pack, t),
        )
        await bot.send_message(user.id, text)
        return
    if kind not in FILED:
        return  # withdrawal: the caller shows /consents
    if await show_open(bot, user, kind, t, pack, desk):
        return
    await state.set_data({"type": kind, "step": 0, "answers": {}})
    if needs_phone(pack, kind) and user.phone_verified_at is None:
        await state.set_state(RightsFlow.contact)
        await bot.send_message(
            user.id, t("flow.contact_needed"), reply_markup=keyboards.share_contact(t)
        )
        return
    await ask_step(bot, user, state, t, pack, desk)


async def contact_shared(
    message: Message,
    bot: Bot,
    state: FSMContext,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
) -> None:
    assert message.contact is not None and message.from_user is not None
    if user is None:
        await message.answer(t("common.start_first"))
        return
    if message.contact.user_id != message.from_user.id:
        await message.answer(t("flow.contact_wrong"), reply_markup=keyboards.share_contact(t))
        return
    await desk.verify_phone(user, message.contact.phone_number)
    await message.answer(t("flow.contact_ok"), reply_markup=ReplyKeyboardRemove())
    await ask_step(bot, user, state, t, pack, desk)


async def contact_expected(message: Message, state: FSMContext, t: Translator) -> None:
    """Anything but the user's own shared contact (typed numbers included) is refused."""
    if message.text == t("common.cancel"):
        await state.clear()
        await message.answer(t("flow.cancelled"), reply_markup=ReplyKeyboardRemove())
        return
    await message.answer(t("flow.contact_typed"), reply_markup=keyboards.share_contact(t))


async def answer_text(
    message: Message,
    bot: Bot,
    state: FSMContext,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
) -> None:
    assert message.text is not None
    data = await state.get_data()
    questions = QUESTIONS[RequestType(data["type"])]
    step = int(data["step"])
    if user is None or step >= len(questions) or questions[step].choices:
        await message.answer(t("common.use_buttons"))
        return
    if len(message.text) > MAX_TEXT:
        await message.answer(t("flow.too_long", length=len(message.text), limit=MAX_TEXT))
        return
    answers = {**data["answers"], questions[step].key: message.text.strip()}
    await state.update_data(step=step + 1, answers=answers)
    await ask_step(bot, user, state, t, pack, desk)


async def flow_file(message: Message, state: FSMContext, t: Translator) -> None:
    """A document or photo sent while filing: kept, and sent with the request."""
    found = attachment_of(message)
    if isinstance(found, Refusal):
        await message.answer(t(f"attach.refused_{found}", limit=MAX_BYTES // 1024 // 1024))
        return
    files = list((await state.get_data()).get("files", []))
    if len(files) >= MAX_FLOW_FILES:
        await message.answer(t("attach.flow_full", limit=MAX_FLOW_FILES))
        return
    files.append(kept_file(found, message.chat.id, message.message_id, message.caption))
    await state.update_data(files=files)
    await message.answer(t("attach.flow_kept", count=len(files)))


def router() -> Router:
    r = Router(name="rights")
    r.message.register(rights_command, Command("rights"))
    r.callback_query.register(pick_button, OnAction(RightsCb, RightsAction.PICK))
    flow = (RightsCb.filter(), InFlow())
    for action, button in ((RightsAction.CANCEL, cancel_button), (RightsAction.BACK, back_button)):
        r.callback_query.register(button, OnAction(RightsCb, action), InFlow())
    for action, button in ((RightsAction.SKIP, skip_button), (RightsAction.CHOICE, choice_button)):
        r.callback_query.register(
            button, OnAction(RightsCb, action), StateFilter(RightsFlow.answer), InFlow()
        )
    r.callback_query.register(
        submit_button,
        OnAction(RightsCb, RightsAction.SUBMIT),
        StateFilter(RightsFlow.confirm),
        InFlow(),
    )
    r.callback_query.register(use_buttons, *flow)
    r.callback_query.register(not_in_flow, RightsCb.filter())
    r.message.register(contact_shared, StateFilter(RightsFlow.contact), Magic(F.contact))
    r.message.register(
        contact_expected, StateFilter(RightsFlow.contact), Magic(~F.text.startswith("/"))
    )
    r.message.register(
        answer_text, StateFilter(RightsFlow.answer), Magic(F.text), Magic(~F.text.startswith("/"))
    )
    r.message.register(
        flow_file, StateFilter(RightsFlow.answer, RightsFlow.confirm), Magic(F.photo | F.document)
    )
    return r
