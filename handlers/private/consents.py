"""/consents: one message with a toggle per optional purpose, edited in place; history; the
legal representative acting for a minor; the Unsubscribe button under marketing messages."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from html import escape

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.core.formatting import fmt_datetime
from bot.core.i18n import Translator, translator
from bot.core.policy import PolicyPack, Purpose
from bot.domain.consents import (
    ConsentOutcome,
    Consents,
    ConsentView,
    Source,
    grant_allowed,
    offer_key,
    text_id,
)
from bot.domain.onboarding import Onboarding, needs_guardian
from bot.telegram import keyboards
from bot.telegram.callbacks import ConsentAction, ConsentCb, UnsubCb
from bot.telegram.filters import OnAction
from bot.telegram.screens import consent_screen, edit_or_send, send_grant_refused
from bot.telegram.texts.consents import consent_history_text, consent_info_text
from storage.models import User
from storage.repositories import Repositories

OFFERS = "consent_offers"  # FSM data: which consent screen text each person was last shown


async def consents_command(
    message: Message,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    consents: Consents,
    repo: Repositories,
) -> None:
    if user is None or user.age_group is None:
        await message.answer(t("common.start_first"))
        return
    text, markup = await consent_screen(user, user, t, pack, consents, repo)
    await message.answer(text, reply_markup=markup)


async def _offers(state: FSMContext) -> dict[str, str]:
    return dict((await state.get_data()).get(OFFERS, {}))


@dataclass(frozen=True)
class Acting:
    """Who pressed a consent button (`viewer`) for whose consents (`subject`), and as what."""

    viewer: User
    subject: User
    source: Source
    minor_id: int  # the minor in the button, 0 for one's own consents


async def _acting(
    query: CallbackQuery,
    callback_data: ConsentCb,
    user: User | None,
    t: Translator,
    consents: Consents,
) -> Acting | None:
    """Whose consents the button is for; None (and the button answered) when it is not valid."""
    if user is None or user.age_group is None:
        await query.answer(t("common.start_first"), show_alert=True)
        return None
    if not callback_data.minor:
        return Acting(user, user, Source.TOGGLE, 0)
    # The ID in the button is only a claim: it must be a minor this sender represents, and the
    # representative acts from their own private chat with the bot.
    own_chat = query.message is None or query.message.chat.id == user.id
    minor = await consents.represented(user.id, callback_data.minor) if own_chat else None
    if minor is None:
        await query.answer(t("common.stale_button"), show_alert=True)
        return None
    return Acting(user, minor, Source.GUARDIAN, minor.id)


async def _show(
    query: CallbackQuery,
    who: Acting,
    bot: Bot,
    t: Translator,
    pack: PolicyPack,
    consents: Consents,
    repo: Repositories,
    status: str | None = None,
) -> None:
    text, markup = await consent_screen(who.subject, who.viewer, t, pack, consents, repo, status)
    await edit_or_send(query, bot, who.viewer.id, text, markup)


async def list_button(
    query: CallbackQuery,
    callback_data: ConsentCb,
    bot: Bot,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    consents: Consents,
    repo: Repositories,
) -> None:
    if (who := await _acting(query, callback_data, user, t, consents)) is None:
        return
    await query.answer()
    await _show(query, who, bot, t, pack, consents, repo)


async def history_button(
    query: CallbackQuery,
    callback_data: ConsentCb,
    bot: Bot,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    consents: Consents,
) -> None:
    if (who := await _acting(query, callback_data, user, t, consents)) is None:
        return
    await query.answer()
    text = consent_history_text(await consents.history(who.subject.id), pack, t)
    markup = keyboards.back_to_consents(t, minor=who.minor_id)
    await edit_or_send(query, bot, who.viewer.id, text, markup)


async def _purpose(
    query: CallbackQuery,
    callback_data: ConsentCb,
    who: Acting,
    bot: Bot,
    t: Translator,
    pack: PolicyPack,
    onboarding: Onboarding,
) -> Purpose | None:
    """The purpose a button is for. A minor's own grant attempt (the info screen, I agree, a
    locked toggle) is refused, with the way to reach the representative."""
    purpose = pack.consent_purpose(callback_data.purpose)
    if purpose is None:
        await query.answer(t("common.stale_button"), show_alert=True)
        return None
    minor = needs_guardian(who.subject.age_group, pack)
    if callback_data.action is not ConsentAction.WITHDRAW and not grant_allowed(minor, who.source):
        await query.answer(t("consents.locked_alert"), show_alert=True)
        await send_grant_refused(bot, who.viewer, t, pack, onboarding)
        return None
    return purpose


async def _view(consents: Consents, who: Acting, purpose: Purpose) -> ConsentView:
    return next(v for v in await consents.views(who.subject.id) if v.purpose.id == purpose.id)


async def locked_button(
    query: CallbackQuery,
    callback_data: ConsentCb,
    bot: Bot,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    consents: Consents,
    onboarding: Onboarding,
) -> None:
    """A minor's locked toggle: refused with the link above; anyone else's is a stale button."""
    if (who := await _acting(query, callback_data, user, t, consents)) is None:
        return
    if await _purpose(query, callback_data, who, bot, t, pack, onboarding) is not None:
        await query.answer(t("common.stale_button"), show_alert=True)


async def info_button(
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
    """What a consent is for, with "I agree" under it; the text shown is remembered."""
    if (who := await _acting(query, callback_data, user, t, consents)) is None:
        return
    if (purpose := await _purpose(query, callback_data, who, bot, t, pack, onboarding)) is None:
        return
    view = await _view(consents, who, purpose)
    if view.effective:
        await query.answer(t("consents.already_on"))
        await _show(query, who, bot, t, pack, consents, repo)
        return
    await query.answer()
    shown = consent_info_text(purpose, pack, t, reconfirm=view.needs_reconfirm)
    # What this person was shown: an "I agree" counts only for exactly this text.
    offered = {offer_key(who.subject.id, purpose.id): text_id(t.locale, shown)}
    await state.update_data({OFFERS: {**await _offers(state), **offered}})
    markup = keyboards.consent_info(purpose.id, t, minor=who.minor_id)
    await edit_or_send(query, bot, who.viewer.id, shown, markup)


async def grant_button(
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
    """I agree, under exactly the text this person was shown."""
    if (who := await _acting(query, callback_data, user, t, consents)) is None:
        return
    if (purpose := await _purpose(query, callback_data, who, bot, t, pack, onboarding)) is None:
        return
    view = await _view(consents, who, purpose)
    shown = consent_info_text(purpose, pack, t, reconfirm=view.needs_reconfirm)
    key = offer_key(who.subject.id, purpose.id)
    if (await _offers(state)).get(key) != text_id(t.locale, shown):
        await query.answer(t("consents.not_shown"), show_alert=True)
        return
    source = consents.grant_source(who.source, view)
    await _change(query, who, purpose, True, source, shown, bot, t, pack, consents, repo)


async def withdraw_button(
    query: CallbackQuery,
    callback_data: ConsentCb,
    bot: Bot,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    consents: Consents,
    onboarding: Onboarding,
    repo: Repositories,
) -> None:
    if (who := await _acting(query, callback_data, user, t, consents)) is None:
        return
    if (purpose := await _purpose(query, callback_data, who, bot, t, pack, onboarding)) is None:
        return
    title = escape(purpose.title.get(t.locale))
    shown = t("consents.withdrawn", title=title, when="")
    await _change(query, who, purpose, False, who.source, shown, bot, t, pack, consents, repo)


async def _change(
    query: CallbackQuery,
    who: Acting,
    purpose: Purpose,
    granted: bool,
    source: Source,
    shown: str,
    bot: Bot,
    t: Translator,
    pack: PolicyPack,
    consents: Consents,
    repo: Repositories,
) -> None:
    """Record the grant or withdrawal and show the list again, with what happened on top."""
    subject = who.subject
    notify = guardian_notice(subject, purpose, granted) if source is Source.GUARDIAN else None
    outcome = await consents.set(
        subject.id,
        purpose.id,
        granted,
        source=source,
        actor_id=who.viewer.id,
        locale=t.locale,
        shown_text=shown,
        minor=needs_guardian(subject.age_group, pack),
        notify=notify,
    )
    if outcome is ConsentOutcome.FROZEN:
        await query.answer(t("consents.frozen"), show_alert=True)
        return
    if outcome is not ConsentOutcome.CHANGED:
        await query.answer(t("consents.already_on" if granted else "consents.already_off"))
        await _show(query, who, bot, t, pack, consents, repo)
        return
    await query.answer()
    when = fmt_datetime(consents.now(), t, pack.zone)
    title = escape(purpose.title.get(t.locale))
    status = t("consents.granted" if granted else "consents.withdrawn", title=title, when=when)
    await _show(query, who, bot, t, pack, consents, repo, status)


def guardian_notice(minor: User, purpose: Purpose, on: bool) -> str:
    """What the minor is told when their representative changed one of their consents."""
    mt = translator(minor.language)
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
    if outcome is not ConsentOutcome.CHANGED:
        await query.answer(t("unsubscribe.already"))
        return
    await query.answer()
    if isinstance(query.message, Message):
        done = keyboards.unsubscribe(t, callback_data.campaign, done=True)
        with contextlib.suppress(TelegramAPIError):  # the confirmation below is what counts
            await query.message.edit_reply_markup(reply_markup=done)
    await bot.send_message(user.id, t("unsubscribe.done"))


def router() -> Router:
    r = Router(name="consents")
    r.message.register(consents_command, Command("consents"))
    for action, button in (
        (ConsentAction.LIST, list_button),
        (ConsentAction.HISTORY, history_button),
        (ConsentAction.INFO, info_button),
        (ConsentAction.GRANT, grant_button),
        (ConsentAction.WITHDRAW, withdraw_button),
        (ConsentAction.LOCKED, locked_button),
    ):
        r.callback_query.register(button, OnAction(ConsentCb, action))
    r.callback_query.register(unsubscribe, UnsubCb.filter())
    return r
