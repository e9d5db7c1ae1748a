"""Commands available at any time: /help, /privacy, /language, /cancel, and the menu buttons."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove

from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from bot.domain.consents import Consents
from bot.domain.onboarding import Onboarding
from bot.domain.requests.desk import offered
from bot.telegram import keyboards
from bot.telegram.callbacks import MenuAction, MenuCb
from bot.telegram.render import help_text
from bot.telegram.screens import (
    menu_screen,
    send_guardian_link,
    send_menu,
    send_notice,
    show_screen,
)
from handlers.private.consents import consent_screen
from handlers.private.rights import requests_screen
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


async def menu_button(
    query: CallbackQuery,
    callback_data: MenuCb,
    bot: Bot,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    onboarding: Onboarding,
    consents: Consents,
    repo: Repositories,
) -> None:
    if user is None or user.age_group is None:
        await query.answer(t("common.start_first"), show_alert=True)
        return
    await query.answer()
    match callback_data.action:
        case MenuAction.NOTICE:
            await send_notice(bot, user.id, t, pack)
        case MenuAction.HELP:
            await bot.send_message(user.id, help_text(pack, t))
        case MenuAction.LANGUAGE:
            await show_screen(query, bot, t("language.choose"), keyboards.languages(t))
        case MenuAction.RIGHTS:
            await show_screen(query, bot, t("flow.title"), keyboards.rights(offered(pack), t))
        case MenuAction.REQUESTS:
            text, markup = await requests_screen(user, t, pack, repo)
            await show_screen(query, bot, text, markup)
        case MenuAction.CONSENTS:
            text, markup = await consent_screen(user, user, t, pack, consents, onboarding, repo)
            await show_screen(query, bot, text, markup)
        case MenuAction.HOME:
            await show_screen(query, bot, *await menu_screen(user, t, pack, onboarding))
        case MenuAction.GUARDIAN_LINK:
            status = await onboarding.consent_status(user)
            if status.confirmation is not None:
                await bot.send_message(user.id, t("guardian.already_confirmed"))
            elif not status.locked:
                await bot.send_message(user.id, t("guardian.not_needed"))
            else:
                await send_guardian_link(bot, user, t, pack, onboarding, renewed=True)


def router() -> Router:
    r = Router(name="common")
    r.message.register(help_command, Command("help"))
    r.message.register(privacy_command, Command("privacy"))
    r.message.register(language_command, Command("language"))
    r.message.register(cancel_command, Command("cancel"))
    r.callback_query.register(menu_button, MenuCb.filter())
    return r
