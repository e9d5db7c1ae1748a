"""The legal representative's side of the guardian link: age, confirmation, consent."""

from __future__ import annotations

import logging
from html import escape

from aiogram import F, Router
from aiogram.filters import CommandObject, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message

from bot.core.formatting import fmt_datetime, operator_name, policy_edition, policy_link
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from bot.domain.onboarding import GUARDIAN_PAYLOAD_PREFIX, LinkCheck, Onboarding
from bot.telegram import keyboards
from bot.telegram.callbacks import GuardianAction, GuardianCb
from bot.telegram.filters import OnAction
from bot.telegram.screens import edit, profile

log = logging.getLogger(__name__)


class RepresentativeFlow(StatesGroup):
    age = State()
    confirm = State()


def _problem_text(check: LinkCheck, t: Translator, pack: PolicyPack) -> str:
    assert check.problem is not None
    return t(f"guardian.link_{check.problem}", age=pack.age.consent_age)


async def open_link(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    t: Translator,
    pack: PolicyPack,
    onboarding: Onboarding,
) -> None:
    assert message.from_user is not None and command.args is not None
    token = command.args.removeprefix(GUARDIAN_PAYLOAD_PREFIX)
    check = await onboarding.check_link(token, message.from_user.id)
    if check.problem is not None:
        await message.answer(_problem_text(check, t, pack))
        return
    await state.set_state(RepresentativeFlow.age)
    await state.set_data({"link_id": check.link_id})
    await message.answer(
        t("guardian.ask_age", age=pack.age.consent_age, operator=operator_name(pack, t.locale)),
        reply_markup=keyboards.guardian_age(t, pack.age.consent_age),
    )


async def cancel(query: CallbackQuery, state: FSMContext, t: Translator) -> None:
    if await state.get_state() not in (RepresentativeFlow.age, RepresentativeFlow.confirm):
        await query.answer(t("common.stale_button"), show_alert=True)
        return
    await state.clear()
    await query.answer()
    await edit(query, t("guardian.cancelled"))


async def representative_too_young(
    query: CallbackQuery, state: FSMContext, t: Translator, pack: PolicyPack
) -> None:
    await state.clear()
    await query.answer()
    await edit(query, t("guardian.too_young", age=pack.age.consent_age))


async def representative_adult(
    query: CallbackQuery, state: FSMContext, t: Translator, pack: PolicyPack, onboarding: Onboarding
) -> None:
    link_id = int((await state.get_data())["link_id"])
    check = await onboarding.check_link_id(link_id, query.from_user.id)
    await query.answer()
    if check.problem is not None or check.minor is None:
        await state.clear()
        await edit(query, _problem_text(check, t, pack))
        return
    await state.set_state(RepresentativeFlow.confirm)
    minor = escape(check.minor.first_name or t("guardian.unnamed"))
    await edit(
        query,
        t(
            "guardian.ask_confirm",
            minor=minor,
            edition=policy_edition(pack, t),
            link=policy_link(pack, t),
        ),
        keyboards.guardian_confirm(t),
    )


async def representative_confirms(
    query: CallbackQuery,
    state: FSMContext,
    t: Translator,
    pack: PolicyPack,
    onboarding: Onboarding,
) -> None:
    link_id = int((await state.get_data())["link_id"])
    check = await onboarding.confirm_guardian(link_id, profile(query.from_user, t.locale))
    await state.clear()
    await query.answer()
    if check.problem is not None or check.minor is None:
        await edit(query, _problem_text(check, t, pack))
        return
    status = await onboarding.consent_status(check.minor)
    assert status.confirmation is not None
    confirmed_at = status.confirmation.confirmed_at
    await edit(
        query,
        t(
            "guardian.recorded",
            when=fmt_datetime(confirmed_at, t, pack.zone),
            version=escape(pack.policy.version),
        ),
        keyboards.minor_consents(
            t, check.minor.id, check.minor.first_name or t("guardian.unnamed")
        ),
    )


async def stale(query: CallbackQuery, t: Translator) -> None:
    await query.answer(t("common.stale_button"), show_alert=True)


def router() -> Router:
    r = Router(name="guardian")
    r.message.register(
        open_link, CommandStart(deep_link=True, magic=F.args.startswith(GUARDIAN_PAYLOAD_PREFIX))
    )
    r.callback_query.register(cancel, OnAction(GuardianCb, GuardianAction.CANCEL))
    r.callback_query.register(
        representative_too_young,
        StateFilter(RepresentativeFlow.age),
        OnAction(GuardianCb, GuardianAction.MINOR),
    )
    r.callback_query.register(
        representative_adult,
        StateFilter(RepresentativeFlow.age),
        OnAction(GuardianCb, GuardianAction.ADULT),
    )
    r.callback_query.register(
        representative_confirms,
        StateFilter(RepresentativeFlow.confirm),
        OnAction(GuardianCb, GuardianAction.CONFIRM),
    )
    r.callback_query.register(stale, GuardianCb.filter())
    return r
