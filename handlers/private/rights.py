"""/rights: a short guided flow per request type, contact verification, confirmation and
filing; /requests; and the user's follow-ups on open requests."""

from __future__ import annotations

from html import escape
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, Filter, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardRemove,
)

from bot.core.formatting import contact_line, fmt_date, months_cap
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack, RequestType
from bot.domain.attachments import MAX_BYTES, Refusal, attachment_of
from bot.domain.consents import Consents, Source
from bot.domain.export import build_export, export_bytes
from bot.domain.onboarding import Onboarding
from bot.domain.requests.desk import (
    FIELD_CHOICES,
    FILED,
    MAX_FLOW_FILES,
    MAX_TEXT,
    QUESTIONS,
    Desk,
    kept_file,
    needs_phone,
    objection_choices,
    offered,
)
from bot.telegram import keyboards
from bot.telegram.callbacks import RightsAction, RightsCb
from bot.telegram.filters import Magic
from bot.telegram.paging import PageCb, PagedList
from bot.telegram.render import access_report, requests_page
from bot.telegram.screens import edit, send_menu, show_screen
from handlers.private.consents import consent_screen
from storage.enums import OPEN, RequestStatus
from storage.models import Request, User
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


async def ask_step(
    bot: Bot, user: User, state: FSMContext, t: Translator, pack: PolicyPack, desk: Desk
) -> None:
    """Show the current question, or the confirmation screen after the last one."""
    data = await state.get_data()
    kind = RequestType(data["type"])
    questions = QUESTIONS[kind]
    step = int(data["step"])
    if step < len(questions):
        question = questions[step]
        choices = choice_labels(question.key, t, pack) if question.choices else None
        await state.set_state(RightsFlow.answer)
        await bot.send_message(
            user.id,
            _question_text(kind, question.key, t),
            reply_markup=keyboards.flow_step(t, choices=choices, optional=question.optional),
        )
        return
    await state.set_state(RightsFlow.confirm)
    details = []
    for key, value in dict(data["answers"]).items():
        labels = dict(choice_labels(key, t, pack)) if key in CHOICE_KEYS else {}
        details.append(f"{t(f'detail.{key}')}: {escape(labels.get(value, value))}")
    deadline = pack.deadlines[kind]
    text = t(
        "flow.confirm",
        type=t(f"rights.{kind}"),
        details="\n".join(details) or t("flow.no_details"),
        due=fmt_date(desk.due(kind, desk.now()), t, pack.zone),
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


async def rights_button(
    query: CallbackQuery,
    callback_data: RightsCb,
    bot: Bot,
    state: FSMContext,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
    consents: Consents,
    onboarding: Onboarding,
    repo: Repositories,
) -> None:
    if user is None or user.age_group is None:
        await query.answer(t("common.start_first"), show_alert=True)
        return
    action, current = callback_data.action, await state.get_state()
    if action is RightsAction.PICK:
        await pick(query, callback_data.value, bot, state, user, t, pack, desk)
        if callback_data.value == RequestType.WITHDRAWAL:
            text, markup = await consent_screen(user, user, t, pack, consents, onboarding, repo)
            await bot.send_message(user.id, text, reply_markup=markup)
        return
    if current not in (RightsFlow.answer, RightsFlow.confirm, RightsFlow.contact):
        await query.answer(t("common.stale_button"), show_alert=True)
        return
    await query.answer()
    data = await state.get_data()
    kind = RequestType(data["type"])
    questions = QUESTIONS[kind]
    step = int(data["step"])
    if action is RightsAction.CANCEL:
        await state.clear()
        await bot.send_message(user.id, t("flow.cancelled"), reply_markup=ReplyKeyboardRemove())
        await send_menu(bot, user, t, pack, onboarding)
        return
    if action is RightsAction.BACK:
        if step == 0:
            await state.clear()
            await show_screen(query, bot, t("flow.title"), keyboards.rights(offered(pack), t))
            return
        answers = dict(data["answers"])
        answers.pop(questions[step - 1].key, None)
        await state.update_data(step=step - 1, answers=answers)
        await ask_step(bot, user, state, t, pack, desk)
        return
    if action is RightsAction.SUBMIT and current == RightsFlow.confirm:
        await state.clear()  # before filing: a double tap finds no flow and files nothing
        answers, files = dict(data["answers"]), list(data.get("files", []))
        await submit(bot, user, kind, answers, files, t, pack, desk, consents, repo)
        return
    if current != RightsFlow.answer or step >= len(questions):
        await bot.send_message(user.id, t("common.use_buttons"))
        return
    question = questions[step]
    if action is RightsAction.SKIP and question.optional:
        await state.update_data(step=step + 1)
    elif action is RightsAction.CHOICE and question.choices:
        if callback_data.value not in dict(choice_labels(question.key, t, pack)):
            await bot.send_message(user.id, t("common.stale_button"))
            return
        await state.update_data(
            step=step + 1, answers={**data["answers"], question.key: callback_data.value}
        )
    else:
        await bot.send_message(user.id, t("common.use_buttons"))
        return
    await ask_step(bot, user, state, t, pack, desk)


async def submit(
    bot: Bot,
    user: User,
    kind: RequestType,
    answers: dict[str, str],
    files: list[dict[str, Any]],
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
    consents: Consents,
    repo: Repositories,
) -> None:
    """File the request; what the user can have at once, they get at once."""
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
    request = await desk.file(user, kind, answers, files)
    due = fmt_date(request.due_at, t, pack.zone)
    received = await bot.send_message(
        user.id, t("flow.received", id=request.id, type=t(f"rights.{kind}"), due=due)
    )
    await desk.remember(user.id, received.message_id, request)
    if kind in (RequestType.ACCESS, RequestType.PORTABILITY):
        await send_export(bot, user, t, pack, repo, desk, report=kind is RequestType.ACCESS)


async def send_export(
    bot: Bot,
    user: User,
    t: Translator,
    pack: PolicyPack,
    repo: Repositories,
    desk: Desk,
    *,
    report: bool,
) -> None:
    export = await build_export(repo, user, pack, desk.clock)
    if report:
        for part in access_report(pack, user, export, t):
            await bot.send_message(user.id, part)
    stamp = desk.now().strftime("%Y%m%d")
    document = BufferedInputFile(export_bytes(export), filename=f"my-data-{stamp}.json")
    summary = t(
        "export.caption",
        consents=len(export["consents"]["ledger"]),
        requests=len(export["requests"]),
        disclosures=len(export["disclosures"]),
    )
    await bot.send_document(user.id, document, caption=summary)


async def export_command(
    message: Message,
    bot: Bot,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    repo: Repositories,
    desk: Desk,
) -> None:
    if user is None:
        await message.answer(t("common.start_first"))
        return
    await send_export(bot, user, t, pack, repo, desk, report=False)


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
        court = authority.court.get(t.locale) if authority.court else t("common.court_default")
        text = t(
            "flow.complaint",
            authority=escape(authority.name.get(t.locale)),
            contacts=contact_line(authority.contacts, t.locale),
            court=escape(court),
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


async def requests_screen(
    user: User, t: Translator, pack: PolicyPack, repo: Repositories, page: int = 0
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The user's requests, a page at a time, with Previous/Next and the way back to the menu."""
    text, pager = requests_page(await repo.requests.of_user(user.id), pack, t, page)
    rows = (pager.inline_keyboard if pager else []) + keyboards.back_to_menu(t).inline_keyboard
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def requests_command(
    message: Message, user: User | None, t: Translator, pack: PolicyPack, repo: Repositories
) -> None:
    if user is None:
        await message.answer(t("common.start_first"))
        return
    text, markup = await requests_screen(user, t, pack, repo)
    await message.answer(text, reply_markup=markup)


async def requests_page_button(
    query: CallbackQuery,
    callback_data: PageCb,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    repo: Repositories,
) -> None:
    """Previous/Next under the user's list of requests: the same message, another page."""
    if user is None:
        await query.answer(t("common.start_first"), show_alert=True)
        return
    await query.answer()
    await edit(query, *await requests_screen(user, t, pack, repo, callback_data.page))


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
    was_waiting = request.status == RequestStatus.WAITING
    await desk.user_message(request, message.text)
    if was_waiting:
        due = fmt_date(request.due_at, t, pack.zone)
        await message.answer(t("requests.answer_sent", id=request.id, due=due))
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
    r.message.register(requests_command, Command("requests"))
    r.message.register(export_command, Command("export"))
    r.callback_query.register(rights_button, RightsCb.filter())
    r.callback_query.register(
        requests_page_button,
        PageCb.filter(F.list == PagedList.REQUESTS),
        Magic(F.message.chat.type == "private"),
    )
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
    r.message.register(followup, StateFilter(None), Magic(F.text), OnRequest())
    r.message.register(attachment, StateFilter(None), OnRequest())
    return r
