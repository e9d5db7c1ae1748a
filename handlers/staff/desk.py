"""The admin desk: card buttons, reasons and questions from staff, relayed replies, /due and
/register. Every action passes the staff check first, which writes the audit log."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime, time
from html import escape

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, ForceReply, Message

from bot.core.clock import Clock
from bot.core.deadlines import add_months
from bot.core.formatting import fmt_date, fmt_datetime
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack, RequestType
from bot.domain.attachments import MAX_BYTES, Refusal, attachment_of
from bot.domain.erasure import ErasureService
from bot.domain.requests.desk import MAX_REASON, MAX_STAFF_TEXT, Desk, Outcome
from bot.domain.requests.filing import NoExtension
from bot.domain.staff import StaffDirectory
from bot.telegram.callbacks import RequestAction, RequestCb, parse_id
from bot.telegram.filters import Magic
from bot.telegram.ledger import CsvStream
from bot.telegram.paging import PageCb, PagedList
from bot.telegram.render import REGISTER_COLUMNS, due_page, register_rows
from bot.telegram.screens import edit, staff_or_alert, staff_or_refuse
from handlers.staff.templates import show_picker
from storage.enums import OPEN
from storage.models import Request
from storage.repositories import Repositories

NEEDS_TEXT = {
    RequestAction.REFUSE,
    RequestAction.UNFOUNDED,
    RequestAction.QUESTION,
    RequestAction.CLARIFY,
    RequestAction.EXTEND,
    RequestAction.BLOCK,
    RequestAction.RESTRICT,
}


class StaffInput(StatesGroup):
    text = State()


async def card_button(
    query: CallbackQuery,
    callback_data: RequestCb,
    bot: Bot,
    state: FSMContext,
    t: Translator,
    desk: Desk,
    staff: StaffDirectory,
    erasure: ErasureService,
    pack: PolicyPack,
    repo: Repositories,
) -> None:
    action, request_id = callback_data.action, callback_data.id
    name = f"request.{action}" + (".start" if action in NEEDS_TEXT else "")
    if not await staff_or_alert(query, bot, t, staff, repo, name, str(request_id)):
        return
    request = await repo.requests.get(request_id)
    if request is None:
        await query.answer(t("common.stale_button"), show_alert=True)
        return
    if action is RequestAction.LIFT:
        outcome = await desk.lift(request, query.from_user.id)
        await query.answer(outcome_note(outcome, request, t), show_alert=outcome is not Outcome.OK)
        return
    if request.status not in OPEN:
        await query.answer(outcome_note(Outcome.CLOSED, request, t), show_alert=True)
        return
    if action is RequestAction.TEMPLATE:
        await show_picker(query, bot, request, t, repo)
        return
    if action is RequestAction.DONE and request.type == RequestType.ERASURE:
        key = await erasure.execute(
            bot,
            request.user_id,
            cause=f"request {request.id}",
            notice="requests.erased",
            claim=desk.erasure_claim(request, query.from_user.id),
        )
        if key is None:
            request = await repo.requests.get(request_id) or request
            await query.answer(outcome_note(Outcome.DECIDED, request, t), show_alert=True)
        else:
            await query.answer()
        return
    if action is RequestAction.DONE and request.type == RequestType.RESTRICTION:
        action = RequestAction.RESTRICT  # ask until when
    if action is RequestAction.EXTEND and (refusal := await desk.extension_refusal(request)):
        await query.answer(t(f"card.extend_{refusal}", id=request.id), show_alert=True)
        return
    if action in NEEDS_TEXT:
        await state.set_state(StaffInput.text)
        await state.set_data({"id": request.id, "action": action})
        await query.answer()
        who = (
            f'<a href="tg://user?id={query.from_user.id}">{escape(query.from_user.first_name)}</a>'
        )
        await bot.send_message(
            query.message.chat.id if query.message else 0,
            prompt_text(action, request, who, t, pack, desk),
            reply_markup=ForceReply(selective=True),
        )
        return
    if action is RequestAction.TAKE:
        outcome = await desk.take(request, query.from_user.id)
    elif request.type == RequestType.RECTIFICATION:
        outcome = await desk.correct(request, query.from_user.id)
    else:
        outcome = await desk.complete(request, query.from_user.id)
    await query.answer(outcome_note(outcome, request, t), show_alert=outcome is not Outcome.OK)


def outcome_note(outcome: Outcome, request: Request, t: Translator) -> str | None:
    """What a staff member is told when their action did not apply, and why."""
    if outcome is Outcome.OK:
        return None
    if outcome is Outcome.DECIDED or request.handled_by is not None:
        return t(
            "card.already_decided",
            id=request.id,
            status=t(f"requests.status_{request.status}"),
            staff=request.handled_by,
        )
    return t("card.closed", id=request.id)


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


UNTIL_LIFTED = datetime(9999, 12, 31, tzinfo=UTC)


def parse_day(word: str, pack: PolicyPack, now: datetime) -> datetime | None:
    """'31.12.2027' or '2027-12-31' -> the end of that day in the operator's zone, if future."""
    for pattern in ("%d.%m.%Y", "%Y-%m-%d"):
        try:
            day = datetime.strptime(word, pattern).date()
        except ValueError:
            continue
        until = datetime.combine(day, time(23, 59, 59), tzinfo=pack.zone)
        return until if until > now else None
    return None


def parse_hold(text: str, pack: PolicyPack, now: datetime) -> tuple[datetime, str] | None:
    """'31.12.2027 reason': a future date, then the reason."""
    head, _, reason = text.strip().partition(" ")
    until = parse_day(head, pack, now)
    if until is None or not reason.strip():
        return None
    return until, reason.strip()


async def staff_text(
    message: Message,
    bot: Bot,
    state: FSMContext,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    desk: Desk,
    staff: StaffDirectory,
    repo: Repositories,
) -> None:
    """The reason, question or hold a staff member was asked for."""
    assert message.from_user is not None
    data = await state.get_data()
    action, request_id = RequestAction(data["action"]), int(data["id"])
    text = (message.text or "").strip()
    if not text:
        await message.reply(t("card.empty"))
        return
    if len(text) > MAX_REASON:
        await message.reply(t("card.too_long", length=len(text), limit=MAX_REASON))
        return
    if not await staff_or_refuse(
        message, bot, t, staff, repo, f"request.{action}", str(request_id)
    ):
        await state.clear()
        return
    request = await repo.requests.get(request_id)
    await state.clear()
    if request is None:
        return
    if action is RequestAction.BLOCK:
        hold = parse_hold(text, pack, clock.now())
        if hold is None:
            await state.set_state(StaffInput.text)
            await state.set_data(data)
            await message.reply(t("card.bad_date"), reply_markup=ForceReply(selective=True))
            return
        outcome = await desk.block(request, message.from_user.id, *hold)
    elif action is RequestAction.RESTRICT:
        until = UNTIL_LIFTED if text == "-" else parse_day(text.split()[0], pack, clock.now())
        if until is None:
            await state.set_state(StaffInput.text)
            await state.set_data(data)
            await message.reply(t("card.bad_until"), reply_markup=ForceReply(selective=True))
            return
        outcome = await desk.restrict(request, message.from_user.id, until)
    elif action in (RequestAction.REFUSE, RequestAction.UNFOUNDED):
        unfounded = action is RequestAction.UNFOUNDED
        outcome = await desk.refuse(request, message.from_user.id, text, unfounded=unfounded)
    elif action is RequestAction.CLARIFY:
        outcome = await desk.clarify(request, message.from_user.id, text)
    elif action is RequestAction.EXTEND:
        outcome = await desk.extend(request, message.from_user.id, text)
    else:
        outcome = await desk.question(request, message.from_user.id, text)
    if isinstance(outcome, NoExtension):
        await message.reply(t(f"card.extend_{outcome}", id=request.id))
    elif (note := outcome_note(outcome, request, t)) is not None:
        await message.reply(note)


async def staff_reply(
    message: Message,
    bot: Bot,
    t: Translator,
    desk: Desk,
    staff: StaffDirectory,
    repo: Repositories,
) -> None:
    """A reply to a card or to a relayed user message goes to that user."""
    assert message.from_user is not None and message.reply_to_message is not None
    author = message.reply_to_message.from_user
    if author is None or author.id != bot.id:
        return  # a reply to another bot in the group is not for us
    request = await repo.requests.by_message(message.chat.id, message.reply_to_message.message_id)
    if request is None:
        await message.reply(t("card.not_linked"))
        return
    subject = str(request.id)
    if not await staff_or_refuse(message, bot, t, staff, repo, "request.reply", subject):
        return
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
    if found is None:
        await desk.staff_reply(
            request, message.from_user.id, message.text or "", confirm_message_id=queued.message_id
        )
    else:
        await desk.staff_attachment(
            request,
            message.from_user.id,
            found,
            message.chat.id,
            message.message_id,
            message.caption,
            confirm_message_id=queued.message_id,
        )


async def due_command(
    message: Message,
    bot: Bot,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    staff: StaffDirectory,
    repo: Repositories,
) -> None:
    assert message.from_user is not None
    if not await staff_or_refuse(message, bot, t, staff, repo, "requests.due", None):
        return
    requests = await repo.requests.open_by_due(OPEN)
    breaches = await repo.breaches.authority_open()
    text, markup = due_page(requests, clock.now(), pack, t, 0, breaches)
    await message.answer(text, reply_markup=markup)


async def due_page_button(
    query: CallbackQuery,
    callback_data: PageCb,
    bot: Bot,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    staff: StaffDirectory,
    repo: Repositories,
) -> None:
    """Previous/Next under /due and the daily list: the same message, another page."""
    if not await staff_or_alert(query, bot, t, staff, repo, "requests.due", None):
        return
    requests = await repo.requests.open_by_due(OPEN)
    breaches = await repo.breaches.authority_open()
    await query.answer()
    await edit(query, *due_page(requests, clock.now(), pack, t, callback_data.page, breaches))


async def register_command(
    message: Message,
    bot: Bot,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    staff: StaffDirectory,
    repo: Repositories,
) -> None:
    assert message.from_user is not None
    if not await staff_or_refuse(message, bot, t, staff, repo, "requests.register", None):
        return
    count = await repo.requests.count()
    now = clock.now()
    # Streamed from the database in chunks while it is uploaded: a register of any size.
    document = CsvStream(
        REGISTER_COLUMNS,
        register_rows(repo.requests.register()),
        filename=f"requests-{now.strftime('%Y%m%d-%H%M')}.csv",
    )
    caption = t("card.register_caption", count=count, when=fmt_datetime(now, t, pack.zone))
    await message.answer_document(document, caption=caption)


async def disclose_command(
    message: Message,
    command: CommandObject,
    bot: Bot,
    t: Translator,
    clock: Clock,
    staff: StaffDirectory,
    repo: Repositories,
) -> None:
    """/disclose <user id> <recipient> <what> <legal basis>; quote multi-word parts."""
    assert message.from_user is not None
    try:
        parts = shlex.split(command.args or "")
    except ValueError:
        parts = []
    subject = parts[0][:20] if parts else None
    if not await staff_or_refuse(message, bot, t, staff, repo, "disclosure.record", subject):
        return
    user_id = parse_id(parts[0]) if len(parts) == 4 else None
    if user_id is None or any(len(p) > 200 for p in parts[1:]):
        await message.reply(t("staff.disclose_usage"))
        return
    user = await repo.users.get(user_id)
    if user is None:
        await message.reply(t("staff.disclose_unknown"))
        return
    await repo.disclosures.add(
        user_id=user.id,
        at=clock.now(),
        recipient=parts[1],
        data=parts[2],
        legal_basis=parts[3],
        staff_id=message.from_user.id,
    )
    await repo.commit()
    await message.reply(t("staff.disclosed", user=user.id, recipient=escape(parts[1])))


def router() -> Router:
    r = Router(name="desk")
    r.callback_query.register(card_button, RequestCb.filter())
    r.message.register(due_command, Command("due"))
    r.callback_query.register(due_page_button, PageCb.filter(F.list == PagedList.DUE))
    r.message.register(register_command, Command("register"))
    r.message.register(disclose_command, Command("disclose"))
    r.message.register(staff_text, StateFilter(StaffInput.text), Magic(~F.text.startswith("/")))
    r.message.register(
        staff_reply, Magic(F.reply_to_message.from_user.is_bot), Magic(~F.text.startswith("/"))
    )
    return r
