"""Commands available at any time: /help, /privacy, /language, /settings, /cancel, and the menu
buttons."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove

from bot.core.i18n import Translator, translator
from bot.core.policy import PolicyPack
from bot.domain.consents import Consents
from bot.domain.onboarding import Onboarding
from bot.domain.requests.catalogue import offered
from bot.telegram import keyboards
from bot.telegram.callbacks import MenuAction, MenuCb
from bot.telegram.filters import OnAction
from bot.telegram.screens import (
    consent_screen,
    menu_screen,
    requests_screen,
    send_guardian_link,
    send_menu,
    send_notice,
    show_screen,
)
from bot.telegram.texts.notice import help_text
from storage.models import User
from storage.repositories import Repositories


async def help_command(message: Message, t: Translator, pack: PolicyPack) -> None:
    await message.answer(help_text(pack, t))


async def privacy_command(message: Message, bot: Bot, t: Translator, pack: PolicyPack) -> None:
    await send_notice(bot, message.chat.id, t, pack)


async def language_command(message: Message, user: User | None, t: Translator) -> None:
    if user is None:
        await message.answer(t("common.start_first"))
        return
    await message.answer(t("language.choose"), reply_markup=keyboards.languages(t))


async def settings_command(
    message: Message, user: User | None, t: Translator, consents: Consents
) -> None:
    """The Telegram convention /settings: the language and the consents, reached from here
    through their usual screens."""
    if user is None or user.age_group is None:
        await message.answer(t("common.start_first"))
        return
    views = await consents.views(user.id)
    lines = [
        t("settings.title"),
        t("settings.language", language=translator(user.language)(f"language.{user.language}")),
        t("settings.consents", on=sum(v.effective for v in views), total=len(views)),
    ]
    await message.answer("\n".join(lines), reply_markup=keyboards.settings(t))


async def cancel_command(
    message: Message,
    bot: Bot,
    state: FSMContext,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    onboarding: Onboarding,
) -> None:
    had_state = await state.get_state() is not None
    await state.clear()
    if user is None:
        await message.answer(t("common.cancelled" if had_state else "common.start_first"))
        return
    await message.answer(
        t("common.cancelled" if had_state else "common.nothing_to_cancel"),
        reply_markup=ReplyKeyboardRemove(),
    )
    if user.age_group is None:
        await message.answer(t("common.start_first"))
        return
    await send_menu(bot, user, t, pack, onboarding)


async def _started(query: CallbackQuery, user: User | None, t: Translator) -> User | None:
    """The sender, once past the age gate; otherwise the button says to start first. The
    button is answered either way."""
    if user is None or user.age_group is None:
        await query.answer(t("common.start_first"), show_alert=True)
        return None
    await query.answer()
    return user


async def notice_button(
    query: CallbackQuery, bot: Bot, user: User | None, t: Translator, pack: PolicyPack
) -> None:
    if (user := await _started(query, user, t)) is not None:
        await send_notice(bot, user.id, t, pack)


async def help_button(
    query: CallbackQuery, bot: Bot, user: User | None, t: Translator, pack: PolicyPack
) -> None:
    if (user := await _started(query, user, t)) is not None:
        await bot.send_message(user.id, help_text(pack, t))


async def language_button(query: CallbackQuery, bot: Bot, user: User | None, t: Translator) -> None:
    if await _started(query, user, t) is not None:
        await show_screen(query, bot, t("language.choose"), keyboards.languages(t))


async def rights_button(
    query: CallbackQuery, bot: Bot, user: User | None, t: Translator, pack: PolicyPack
) -> None:
    if await _started(query, user, t) is not None:
        await show_screen(query, bot, t("flow.title"), keyboards.rights(offered(pack), t))


async def requests_button(
    query: CallbackQuery,
    bot: Bot,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    repo: Repositories,
) -> None:
    if (user := await _started(query, user, t)) is not None:
        await show_screen(query, bot, *await requests_screen(user, t, pack, repo))


async def consents_button(
    query: CallbackQuery,
    bot: Bot,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    consents: Consents,
    repo: Repositories,
) -> None:
    if (user := await _started(query, user, t)) is not None:
        text, markup = await consent_screen(user, user, t, pack, consents, repo)
        await show_screen(query, bot, text, markup)


async def home_button(
    query: CallbackQuery,
    bot: Bot,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    onboarding: Onboarding,
) -> None:
    if (user := await _started(query, user, t)) is not None:
        await show_screen(query, bot, *await menu_screen(user, t, pack, onboarding))


async def guardian_link_button(
    query: CallbackQuery,
    bot: Bot,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    onboarding: Onboarding,
) -> None:
    """A new link for the representative, while the minor's consents wait for one."""
    if (user := await _started(query, user, t)) is None:
        return
    status = await onboarding.consent_status(user)
    if status.confirmation is not None:
        await bot.send_message(user.id, t("guardian.already_confirmed"))
    elif not status.locked:
        await bot.send_message(user.id, t("guardian.not_needed"))
    else:
        await send_guardian_link(bot, user, t, pack, onboarding)


def router() -> Router:
    r = Router(name="common")
    r.message.register(help_command, Command("help"))
    r.message.register(privacy_command, Command("privacy"))
    r.message.register(language_command, Command("language"))
    r.message.register(settings_command, Command("settings"))
    r.message.register(cancel_command, Command("cancel"))
    for action, button in (
        (MenuAction.NOTICE, notice_button),
        (MenuAction.HELP, help_button),
        (MenuAction.LANGUAGE, language_button),
        (MenuAction.RIGHTS, rights_button),
        (MenuAction.REQUESTS, requests_button),
        (MenuAction.CONSENTS, consents_button),
        (MenuAction.HOME, home_button),
        (MenuAction.GUARDIAN_LINK, guardian_link_button),
    ):
        r.callback_query.register(button, OnAction(MenuCb, action))
    return r
