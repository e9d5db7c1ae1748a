"""/consents: one message with a toggle per optional purpose, edited in place; history; the
legal representative acting for a minor; the Unsubscribe button under marketing messages."""

from __future__ import annotations

import contextlib
import logging
from html import escape

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot.core.formatting import fmt_datetime
from bot.core.i18n import Translator, translator
from bot.core.policy import PolicyPack
from bot.domain.consents import Consents, Outcome, Source, offer_key, text_id
from bot.domain.onboarding import Onboarding, needs_guardian
from bot.telegram import keyboards
from bot.telegram.callbacks import ConsentAction, ConsentCb, UnsubCb
from bot.telegram.render import consent_history_text, consent_info_text, consent_list_text
from bot.telegram.screens import edit, send_guardian_link
from storage.models import User
from storage.repositories import Repositories

log = logging.getLogger(__name__)
OFFERS = "consent_offers"  # FSM data: which consent screen text each person was last shown


async def consent_screen(
    subject: User,
    viewer: User,
    t: Translator,
    pack: PolicyPack,
    consents: Consents,
    onboarding: Onboarding,
    repo: Repositories,
    status: str | None = None,
) -> tuple[str, InlineKeyboardMarkup]:
    """The list of consents of `subject` as `viewer` sees it (themselves, or as representative)."""
    views = await consents.views(subject.id)
    acting_for = subject.id if subject.id != viewer.id else 0
    # A minor sees every state and may withdraw; only the representative grants.
    minor = not acting_for and needs_guardian(subject.age_group, pack)
    name = (subject.first_name or t("guardian.unnamed")) if acting_for else None
    minors = [] if acting_for else await repo.guardians.minors_of(viewer.id)
    text = consent_list_text(views, pack, t, minor=minor, subject_name=name, status=status)
    markup = keyboards.consents(
        views,
        t,
        minor_self=minor,
        minor=acting_for,
        minors=[(m.id, m.first_name or t("guardian.unnamed")) for m in minors],
    )
    return text, markup


async def consents_command(
    message: Message,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    consents: Consents,
    onboarding: Onboarding,
    repo: Repositories,
) -> None:
    if user is None or user.age_group is None:
        await message.answer(t("common.start_first"))
        return
    text, markup = await consent_screen(user, user, t, pack, consents, onboarding, repo)
    await message.answer(text, reply_markup=markup)


async def _offers(state: FSMContext) -> dict[str, str]:
    return dict((await state.get_data()).get(OFFERS, {}))


async def consent_button(
    query: CallbackQuery,
    callback_data: ConsentCb,
    bot: Bot,
    state: FSMContext,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    consents: Consents,
    onboarding: Onboarding,
    repo: Repositories,
) -> None:
    if user is None or user.age_group is None:
        await query.answer(t("common.start_first"), show_alert=True)
        return
    subject, source = user, Source.TOGGLE
    if callback_data.minor:
        # The ID in the button is only a claim: it must be a minor this sender represents, and
        # the representative acts from their own private chat with the bot.
        minor = await repo.users.get(callback_data.minor)
        own_chat = query.message is None or query.message.chat.id == user.id
        if minor is None or not own_chat or not await repo.guardians.is_guardian(user.id, minor.id):
            await query.answer(t("common.stale_button"), show_alert=True)
            return
        subject, source = minor, Source.GUARDIAN

    async def show(status: str | None = None) -> None:
        text, markup = await consent_screen(
            subject, user, t, pack, consents, onboarding, repo, status
        )
        await edit_or_send(query, bot, user.id, text, markup)

    action = callback_data.action
    purpose = pack.consent_purpose(callback_data.purpose)
    if action is ConsentAction.LIST:
        await query.answer()
        await show()
        return
    if action is ConsentAction.HISTORY:
        await query.answer()
        text = consent_history_text(await consents.history(subject.id), pack, t)
        markup = keyboards.back_to_consents(t, minor=callback_data.minor)
        await edit_or_send(query, bot, user.id, text, markup)
        return
    if purpose is None:
        await query.answer(t("common.stale_button"), show_alert=True)
        return
    minor_self = source is not Source.GUARDIAN and needs_guardian(subject.age_group, pack)
    granting = action in (ConsentAction.INFO, ConsentAction.GRANT, ConsentAction.LOCKED)
    if minor_self and granting:
        # Every grant attempt by a minor: refused, with the way to reach the representative.
        await query.answer(t("consents.locked_alert"), show_alert=True)
        await send_guardian_link(bot, user, t, pack, onboarding, renewed=False, refused=True)
        return
    if action is ConsentAction.LOCKED:
        await query.answer(t("common.stale_button"), show_alert=True)
        return
    view = next(v for v in await consents.views(subject.id) if v.purpose.id == purpose.id)
    title = escape(purpose.title.get(t.locale))
    shown = consent_info_text(purpose, pack, t, reconfirm=view.needs_reconfirm)
    key = offer_key(subject.id, purpose.id)

    if action is ConsentAction.INFO:
        if view.effective:
            await query.answer(t("consents.already_on"))
            await show()
            return
        await query.answer()
        # What this person was shown: an "I agree" counts only for exactly this text.
        await state.update_data({OFFERS: {**await _offers(state), key: text_id(t.locale, shown)}})
        markup = keyboards.consent_info(purpose.id, t, minor=callback_data.minor)
        await edit_or_send(query, bot, user.id, shown, markup)
        return

    granted = action is ConsentAction.GRANT
    if granted:
        if (await _offers(state)).get(key) != text_id(t.locale, shown):
            await query.answer(t("consents.not_shown"), show_alert=True)
            return
        if view.needs_reconfirm and source is Source.TOGGLE:
            source = Source.RECONSENT
    else:
        shown = t("consents.withdrawn", title=title, when="")
    notify = (
        guardian_notice(subject, pack, purpose.id, granted) if source is Source.GUARDIAN else None
    )
    outcome = await consents.set(
        subject.id,
        purpose.id,
        granted,
        source=source,
        actor_id=user.id,
        locale=t.locale,
        shown_text=shown,
        minor=needs_guardian(subject.age_group, pack),
        notify=notify,
    )
    if outcome is Outcome.FROZEN:
        await query.answer(t("consents.frozen"), show_alert=True)
        return
    if outcome is not Outcome.CHANGED:
        await query.answer(t("consents.already_on" if granted else "consents.already_off"))
        await show()
        return
    await query.answer()
    when = fmt_datetime(consents.now(), t, pack.zone)
    key = "consents.granted" if granted else "consents.withdrawn"
    await show(t(key, title=title, when=when))


def guardian_notice(minor: User, pack: PolicyPack, purpose_id: str, on: bool) -> str:
    mt = translator(minor.language)
    purpose = pack.consent_purpose(purpose_id)
    assert purpose is not None
    return mt(
        "consents.guardian_changed",
        title=escape(purpose.title.get(mt.locale)),
        state=mt("consents.state_on" if on else "consents.state_off"),
    )


async def unsubscribe(
    query: CallbackQuery,
    callback_data: UnsubCb,
    bot: Bot,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    consents: Consents,
) -> None:
    """One tap withdraws the marketing consent, from any campaign message, also old ones."""
    if user is None or pack.marketing is None:
        await query.answer(t("common.stale_button"), show_alert=True)
        return
    outcome = await consents.set(
        user.id,
        pack.marketing.purpose,
        False,
        source=Source.UNSUBSCRIBE,
        actor_id=user.id,
        locale=t.locale,
        shown_text=t("unsubscribe.button"),
    )
    if outcome is not Outcome.CHANGED:
        await query.answer(t("unsubscribe.already"))
        return
    await query.answer()
    if isinstance(query.message, Message):
        done = keyboards.unsubscribe(t, callback_data.campaign, done=True)
        with contextlib.suppress(TelegramAPIError):  # the confirmation below is what counts
            await query.message.edit_reply_markup(reply_markup=done)
    await bot.send_message(user.id, t("unsubscribe.done"))


async def edit_or_send(
    query: CallbackQuery, bot: Bot, chat_id: int, text: str, markup: InlineKeyboardMarkup
) -> None:
    if isinstance(query.message, Message):
        await edit(query, text, markup)
    else:
        await bot.send_message(chat_id, text, reply_markup=markup)


def router() -> Router:
    r = Router(name="consents")
    r.message.register(consents_command, Command("consents"))
    r.callback_query.register(consent_button, ConsentCb.filter())
    r.callback_query.register(unsubscribe, UnsubCb.filter())
    return r
