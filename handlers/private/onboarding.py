"""/start, the age gate, the notice and the menu: a user's first minutes."""

from __future__ import annotations

from html import escape

from aiogram import Bot, F, Router
from aiogram.filters import CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.core.formatting import contact_line, fmt_datetime, operator_name
from bot.core.i18n import LOCALES, Translator, translator
from bot.core.policy import PolicyPack
from bot.domain.onboarding import Onboarding, age_answers, needs_guardian
from bot.telegram import keyboards
from bot.telegram.callbacks import AgeCb, LangCb
from bot.telegram.screens import (
    edit,
    menu_screen,
    profile,
    send_guardian_link,
    send_menu,
    send_notice,
    show_screen,
)
from storage.models import User


def _age_question(t: Translator, pack: PolicyPack) -> str:
    """The first message: the age question with the full policy's link (Law 99-Z art. 17:
    the policy is available before processing starts; the age answer is the first)."""
    url = pack.policy.url
    policy = (
        t("age.policy", url=escape(url))
        if url
        else t("age.policy_none", contact=contact_line(pack.operator.contacts, t.locale))
    )
    return t("age.question", operator=operator_name(pack, t.locale), policy=policy)


async def continue_onboarding(
    bot: Bot, user: User, t: Translator, pack: PolicyPack, onboarding: Onboarding
) -> None:
    """Take the user to the next step they have not done: age gate, notice, then menu."""
    if user.age_group is None:
        answers = age_answers(pack)
        await bot.send_message(
            user.id,
            _age_question(t, pack),
            reply_markup=keyboards.age_gate(t, answers, pack),
        )
        return
    if onboarding.notice_due(user):
        await send_notice(bot, user.id, t, pack)
        await onboarding.notice_shown(user)
    await send_menu(bot, user, t, pack, onboarding)


async def start(
    message: Message,
    bot: Bot,
    state: FSMContext,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    onboarding: Onboarding,
) -> None:
    await state.clear()
    sender = message.from_user
    assert sender is not None  # private chats always have a sender
    # The sender's language as LocaleMiddleware chose it: their stored one, else Telegram's.
    user = await onboarding.register(profile(sender, t.locale), user)
    await continue_onboarding(bot, user, translator(user.language), pack, onboarding)


async def age_answer(
    query: CallbackQuery,
    callback_data: AgeCb,
    bot: Bot,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    onboarding: Onboarding,
) -> None:
    if user is None:
        await query.answer(t("common.start_first"), show_alert=True)
        return
    if callback_data.answer not in age_answers(pack):
        await query.answer(t("common.stale_button"), show_alert=True)
        return
    if not await onboarding.answer_age(user, callback_data.answer):
        await query.answer(t("age.already"))
        return
    await query.answer()
    label = t(f"age.{callback_data.answer}", age=pack.age.consent_age)
    when = fmt_datetime(user.age_answered_at, t, pack.zone)  # type: ignore[arg-type]
    await edit(query, t("age.recorded", answer=label, when=when))
    await send_notice(bot, user.id, t, pack)
    await onboarding.notice_shown(user)
    if needs_guardian(user.age_group, pack):
        await send_guardian_link(bot, user, t, pack, onboarding)
    await send_menu(bot, user, t, pack, onboarding)


async def language_chosen(
    query: CallbackQuery,
    callback_data: LangCb,
    bot: Bot,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    onboarding: Onboarding,
) -> None:
    if user is None:
        await query.answer(t("common.start_first"), show_alert=True)
        return
    await onboarding.set_language(user, callback_data.code)
    t = translator(user.language)
    await query.answer()
    if user.age_group is None:
        # Still at the age gate: show the same question in the new language.
        await edit(
            query,
            _age_question(t, pack),
            keyboards.age_gate(t, age_answers(pack), pack),
        )
        return
    text, markup = await menu_screen(user, t, pack, onboarding)
    await show_screen(query, bot, f"{t('language.set')}\n\n{text}", markup)


def router() -> Router:
    r = Router(name="onboarding")
    r.message.register(start, CommandStart())
    r.callback_query.register(age_answer, AgeCb.filter())
    r.callback_query.register(language_chosen, LangCb.filter(F.code.in_(LOCALES)))
    return r
