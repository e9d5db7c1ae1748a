"""Rendering shared by several handlers: the notice and the menu."""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.types import User as TgUser
from aiogram.utils.deep_linking import create_start_link

from bot.core.formatting import fmt_datetime
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from bot.core.roles import Need
from bot.domain.consents import Consents
from bot.domain.onboarding import Onboarding, Profile
from bot.domain.staff import StaffDirectory
from bot.telegram import keyboards
from bot.telegram.render import notice_text, policy_update_text
from storage.models import User
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
    await onboarding.notice_shown(user)  # recorded first: told once, even if a send fails
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
    bot: Bot,
    user: User,
    t: Translator,
    pack: PolicyPack,
    onboarding: Onboarding,
    *,
    renewed: bool,
    refused: bool = False,
) -> None:
    """A fresh one-time link for the minor's representative; `refused`: after a grant attempt."""
    invite = await onboarding.new_guardian_link(user)
    link = await create_start_link(bot, invite.payload)
    expires = fmt_datetime(invite.expires_at, t, pack.zone)
    key = "guardian.grant_refused" if refused else "guardian.minor_intro"
    text = t(key, age=pack.age.consent_age, expires=expires, link=link)
    if renewed:
        text = t("guardian.new_link") + "\n\n" + text
    await bot.send_message(user.id, text)


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


def profile(sender: TgUser, language: str) -> Profile:
    return Profile(
        id=sender.id,
        language=language,
        username=sender.username,
        first_name=sender.first_name,
        last_name=sender.last_name,
    )


async def staff_or_refuse(
    message: Message,
    bot: Bot,
    t: Translator,
    staff: StaffDirectory,
    repo: Repositories,
    action: str,
    subject: str | None = None,
    need: Need | None = None,
) -> bool:
    """True when the sender's role may do `action` (it needs `need`, by default the need of
    the action's name); otherwise a refusal naming the role needed. Audited either way."""
    assert message.from_user is not None
    decision = await staff.check(bot, message.from_user.id, action, subject, repo, need)
    if not decision:
        await message.reply(decision.refusal(t))
    return decision.allowed


async def staff_or_alert(
    query: CallbackQuery,
    bot: Bot,
    t: Translator,
    staff: StaffDirectory,
    repo: Repositories,
    action: str,
    subject: str | None = None,
    need: Need | None = None,
) -> bool:
    """The same check for a button: the refusal is an alert."""
    decision = await staff.check(bot, query.from_user.id, action, subject, repo, need)
    if not decision:
        await query.answer(decision.refusal(t, alert=True), show_alert=True)
    return decision.allowed
