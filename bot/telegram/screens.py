"""Screens shared by several handlers: the notice, the menu, the policy update, the guardian
link, the templates picker under a card, and editing the message a button was on."""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
)
from aiogram.types import User as TgUser
from aiogram.utils.deep_linking import create_start_link

from bot.core.formatting import fmt_datetime
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from bot.domain.consents import Consents
from bot.domain.export import build_export, export_bytes
from bot.domain.onboarding import Onboarding, Profile, needs_guardian
from bot.domain.requests.desk import Desk
from bot.telegram import keyboards
from bot.telegram.texts.access import access_report
from bot.telegram.texts.answer import export_caption
from bot.telegram.texts.consents import consent_list_text
from bot.telegram.texts.notice import notice_text, policy_update_text
from bot.telegram.texts.requests import requests_page
from storage.models import Request, User
from storage.repositories import Repositories


async def send_notice(bot: Bot, chat_id: int, t: Translator, pack: PolicyPack) -> None:
    await bot.send_message(chat_id, notice_text(pack, t), reply_markup=keyboards.notice(t, pack))


async def send_policy_update(
    bot: Bot,
    user: User,
    t: Translator,
    pack: PolicyPack,
    onboarding: Onboarding,
    consents: Consents,
) -> None:
    """What changed, then the new notice (with links to earlier versions); once per version."""
    reconfirm = any(v.needs_reconfirm for v in await consents.views(user.id))
    await onboarding.policy_update_shown(user)  # recorded first: told once, even if a send fails
    await bot.send_message(user.id, policy_update_text(pack, t, reconfirm=reconfirm))
    await send_notice(bot, user.id, t, pack)


async def menu_screen(
    user: User, t: Translator, pack: PolicyPack, onboarding: Onboarding
) -> tuple[str, InlineKeyboardMarkup]:
    status = await onboarding.consent_status(user)
    lines = [t("menu.title")]
    if status.locked:
        lines.append(t("menu.locked"))
    elif status.confirmation is not None:
        when = fmt_datetime(status.confirmation.confirmed_at, t, pack.zone)
        lines.append(t("menu.confirmed", when=when))
    return "\n\n".join(lines), keyboards.menu(t, guardian_link=status.locked)


async def send_menu(
    bot: Bot, user: User, t: Translator, pack: PolicyPack, onboarding: Onboarding
) -> None:
    text, markup = await menu_screen(user, t, pack, onboarding)
    await bot.send_message(user.id, text, reply_markup=markup)


async def send_guardian_link(
    bot: Bot, user: User, t: Translator, pack: PolicyPack, onboarding: Onboarding
) -> None:
    """A fresh one-time link for the minor's representative; a link that still worked is voided,
    and the minor is told so."""
    invite = await onboarding.new_guardian_link(user)
    link = await create_start_link(bot, invite.payload)
    expires = fmt_datetime(invite.expires_at, t, pack.zone)
    text = t("guardian.minor_intro", age=pack.age.consent_age, expires=expires, link=link)
    if invite.replaced:
        text = t("guardian.new_link") + "\n\n" + text
    await bot.send_message(user.id, text)


async def send_grant_refused(
    bot: Bot, user: User, t: Translator, pack: PolicyPack, onboarding: Onboarding
) -> None:
    """A minor's grant attempt is refused. The links are left as they are: the one already sent
    is shown as still waiting (sent at, expires at), and a button gets a new one on request."""
    lines = [t("guardian.grant_refused")]
    markup = None
    status = await onboarding.consent_status(user)
    if status.confirmation is not None:
        when = fmt_datetime(status.confirmation.confirmed_at, t, pack.zone)
        lines.append(t("guardian.refused_confirmed", when=when))
    elif (waiting := await onboarding.waiting_link(user)) is not None:
        sent = fmt_datetime(waiting.sent_at, t, pack.zone)
        expires = fmt_datetime(waiting.expires_at, t, pack.zone)
        lines.append(t("guardian.link_waiting", sent=sent, expires=expires))
        markup = keyboards.new_guardian_link(t)
    else:
        lines.append(t("guardian.no_link"))
        markup = keyboards.new_guardian_link(t)
    await bot.send_message(user.id, "\n\n".join(lines), reply_markup=markup)


async def edit(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Edit the message a button belongs to; an unchanged text is not an error."""
    if not isinstance(query.message, Message):
        return
    try:
        await query.message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as error:
        if "message is not modified" not in error.message:
            raise


async def show_screen(
    query: CallbackQuery, bot: Bot, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    """A menu screen reached from a button replaces the message the button was on (Telegram
    convention); when that message cannot be edited (too old, not text) it comes as a new one."""
    if isinstance(query.message, Message) and query.message.text is not None:
        try:
            await query.message.edit_text(text, reply_markup=markup)
            return
        except TelegramBadRequest as error:
            if "message is not modified" in error.message:
                return
    await bot.send_message(query.from_user.id, text, reply_markup=markup)


async def edit_or_send(
    query: CallbackQuery, bot: Bot, chat_id: int, text: str, markup: InlineKeyboardMarkup
) -> None:
    """Edit the message the button was on; a button on no message gets a new one."""
    if isinstance(query.message, Message):
        await edit(query, text, markup)
    else:
        await bot.send_message(chat_id, text, reply_markup=markup)


async def consent_screen(
    subject: User,
    viewer: User,
    t: Translator,
    pack: PolicyPack,
    consents: Consents,
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


async def requests_screen(
    user: User, t: Translator, pack: PolicyPack, repo: Repositories, page: int = 0
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The user's requests, a page at a time, with Previous/Next and the way back to the menu."""
    text, pager = requests_page(await repo.requests.of_user(user.id), pack, t, page)
    rows = (pager.inline_keyboard if pager else []) + keyboards.back_to_menu(t).inline_keyboard
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


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
    """The user's data as a JSON file; `report`: first the access report, readable (GDPR art.
    15), in as many messages as it takes."""
    export = await build_export(repo, user, pack, desk.clock)
    if report:
        for part in access_report(pack, user, export, t):
            await bot.send_message(user.id, part)
    stamp = desk.now().strftime("%Y%m%d")
    document = BufferedInputFile(export_bytes(export), filename=f"my-data-{stamp}.json")
    await bot.send_document(user.id, document, caption=export_caption(export, t))


def profile(sender: TgUser, language: str) -> Profile:
    return Profile(
        id=sender.id,
        language=language,
        username=sender.username,
        first_name=sender.first_name,
        last_name=sender.last_name,
    )


async def show_picker(
    query: CallbackQuery, bot: Bot, request: Request, t: Translator, repo: Repositories
) -> None:
    """The answer templates to choose from, under the card."""
    templates = await repo.templates.every()
    if not templates:
        await query.answer(t("templates.none"), show_alert=True)
        return
    await query.answer()
    if query.message is None:
        return
    await bot.send_message(
        query.message.chat.id,
        t("templates.pick", id=request.id),
        reply_markup=keyboards.template_picker(templates, request.id, t),
        reply_parameters=ReplyParameters(
            message_id=query.message.message_id, allow_sending_without_reply=True
        ),
    )
