"""/requests (the user's requests, a page at a time) and /export (everything the bot holds on
them, as a file)."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from bot.domain.requests.desk import Desk
from bot.telegram.filters import Magic
from bot.telegram.paging import PageCb, PagedList
from bot.telegram.screens import edit, requests_screen, send_export
from storage.models import User
from storage.repositories import Repositories


async def requests_command(
    message: Message, user: User | None, t: Translator, pack: PolicyPack, repo: Repositories
) -> None:
    if user is None:
        await message.answer(t("common.start_first"))
        return
    text, markup = await requests_screen(user, t, pack, repo)
    await message.answer(text, reply_markup=markup)


async def requests_page_button(
    query: CallbackQuery,
    callback_data: PageCb,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    repo: Repositories,
) -> None:
    """Previous/Next under the user's list of requests: the same message, another page."""
    if user is None:
        await query.answer(t("common.start_first"), show_alert=True)
        return
    await query.answer()
    await edit(query, *await requests_screen(user, t, pack, repo, callback_data.page))


async def export_command(
    message: Message,
    bot: Bot,
    user: User | None,
    t: Translator,
    pack: PolicyPack,
    repo: Repositories,
    desk: Desk,
) -> None:
    if user is None:
        await message.answer(t("common.start_first"))
        return
    await send_export(bot, user, t, pack, repo, desk, report=False)


def router() -> Router:
    r = Router(name="requests")
    r.message.register(requests_command, Command("requests"))
    r.message.register(export_command, Command("export"))
    r.callback_query.register(
        requests_page_button,
        PageCb.filter(F.list == PagedList.REQUESTS),
        Magic(F.message.chat.type == "private"),
    )
    return r
