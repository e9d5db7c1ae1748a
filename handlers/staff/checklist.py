"""The checklist of a request carried out in the operator's systems, on its card: Retry a system
that failed past the limit, Tick a system done by hand (a note follows, typed), and a DPO's
Complete with explanation (a reason follows, typed). Forged buttons (a job of another request,
of a closed one, an unknown one) change nothing and get an alert. Registered before
`desk_typed`: the typed note and reason are this module's."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, TelegramObject

from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from bot.domain.requests.carrying import recipient_names
from bot.domain.requests.desk import Desk, RequestOutcome
from bot.telegram.callbacks import JobAction, JobCb, RequestAction, RequestCb
from bot.telegram.desk_prompts import (
    NOT_A_COMMAND,
    StaffInput,
    Typed,
    TypedFor,
    ask_for_text,
    outcome_note,
)
from bot.telegram.filters import OnAction
from bot.telegram.staff_gate import callback_id, staff_action
from bot.telegram.texts.checklist import names_of
from storage.enums import RequestStatus
from storage.repositories import Repositories


async def _stale(query: CallbackQuery, t: Translator, request_id: int) -> None:
    await query.answer(t("carrying.stale", id=request_id), show_alert=True)


async def job_button(
    query: CallbackQuery,
    callback_data: JobCb,
    bot: Bot,
    state: FSMContext,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
    repo: Repositories,
) -> None:
    """Retry now, or ask for the note of a system done by hand."""
    request_id, job_id = callback_data.request, callback_data.job
    if callback_data.action is JobAction.RETRY:
        if await desk.retry_job(request_id, job_id) is not RequestOutcome.OK:
            return await _stale(query, t, request_id)
        return await query.answer(t("carrying.retrying", id=request_id))
    job = await repo.jobs.get(job_id)
    request = await repo.requests.get(request_id)
    if job is None or request is None or not await desk.may_tick(request_id, job_id):
        await _stale(query, t, request_id)
        return
    name = names_of(pack, t, await recipient_names(repo, job.user_id)).get(job.system_id, "")
    await query.answer()
    chat_id = query.message.chat.id if query.message else 0
    await ask_for_text(
        chat_id,
        query.from_user,
        RequestAction.TICK,
        request,
        bot,
        state,
        t,
        pack,
        desk,
        job=str(job_id),
        system=name,
    )


async def explain_button(
    query: CallbackQuery,
    callback_data: RequestCb,
    bot: Bot,
    state: FSMContext,
    t: Translator,
    pack: PolicyPack,
    desk: Desk,
    repo: Repositories,
) -> None:
    """A DPO completes the request with the rest explained: the reason comes next."""
    request = await repo.requests.get(callback_data.id)
    if request is None or request.status != RequestStatus.CARRYING_OUT:
        await _stale(query, t, callback_data.id)
        return
    await query.answer()
    chat_id = query.message.chat.id if query.message else 0
    await ask_for_text(
        chat_id, query.from_user, RequestAction.EXPLAIN, request, bot, state, t, pack, desk
    )


async def typed_tick(
    message: Message, typed: Typed, state: FSMContext, t: Translator, desk: Desk
) -> None:
    """The note of a system done by hand: the job is ticked (who, when, the note sealed)."""
    assert message.from_user is not None
    await state.clear()
    outcome = await desk.tick(typed.request_id, typed.job, message.from_user.id, typed.text)
    if outcome is RequestOutcome.OK:
        await message.reply(t("carrying.ticked", id=typed.request_id))
    else:
        await message.reply(t("carrying.stale", id=typed.request_id))


async def typed_explained(
    message: Message,
    typed: Typed,
    state: FSMContext,
    t: Translator,
    desk: Desk,
    repo: Repositories,
) -> None:
    """A DPO's reason: the rest is cancelled and the request finished (by the worker)."""
    assert message.from_user is not None
    await state.clear()
    request = await repo.requests.get(typed.request_id)
    if request is None:
        return
    outcome = await desk.complete_explained(request, message.from_user.id, typed.text)
    if outcome is RequestOutcome.OK:
        await message.reply(t("carrying.explained_done", id=request.id))
    elif (note := outcome_note(outcome, request, t)) is not None:
        await message.reply(note)


def _job_request(_: TelegramObject, data: dict[str, Any]) -> str:
    return str(data["callback_data"].request)


def _typed_subject(_: TelegramObject, data: dict[str, Any]) -> str:
    typed: Typed = data["typed"]
    return str(typed.request_id)


def router() -> Router:
    r = Router(name="checklist")
    retry = staff_action("request.job_retry", subject=_job_request)
    r.callback_query.register(job_button, OnAction(JobCb, JobAction.RETRY), flags=retry)
    tick = staff_action("request.tick.start", subject=_job_request)
    r.callback_query.register(job_button, OnAction(JobCb, JobAction.TICK), flags=tick)
    # A DPO's action (bot.core.roles: "request.complete_explained").
    explain = staff_action("request.complete_explained.start", subject=callback_id)
    r.callback_query.register(
        explain_button, OnAction(RequestCb, RequestAction.EXPLAIN), flags=explain
    )
    asked = (StateFilter(StaffInput.text), NOT_A_COMMAND)
    ticked = staff_action("request.tick", subject=_typed_subject, forget_input=True)
    r.message.register(typed_tick, *asked, TypedFor(RequestAction.TICK), flags=ticked)
    explained = staff_action(
        "request.complete_explained", subject=_typed_subject, forget_input=True
    )
    r.message.register(typed_explained, *asked, TypedFor(RequestAction.EXPLAIN), flags=explained)
    return r
