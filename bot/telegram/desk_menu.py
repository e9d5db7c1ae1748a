"""The desk app's menu button in a staff member's private chat with the bot: a Web App button
opening WEBAPP_URL/desk/ for those who work the desk (a DPO, an agent), Telegram's default for
anyone else (someone who stopped being staff, or marketing). Set at start for the staff the
bot knows of and on /role; a Telegram error (the person never opened the bot, say) is logged
without the person and never stops anything."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import MenuButtonDefault, MenuButtonWebApp, WebAppInfo

from bot.core.i18n import Translator
from bot.core.roles import Need, Role

log = logging.getLogger(__name__)


def desk_url(webapp_url: str) -> str:
    return webapp_url.rstrip("/") + "/desk/"


async def set_desk_menu(
    bot: Bot, chat_id: int, role: Role | None, webapp_url: str | None, t: Translator
) -> bool:
    """The button `role` should see in its private chat: the desk for desk work, else the
    default. True when Telegram took it."""
    if not webapp_url:
        return False
    if role is not None and role in Need.DESK.roles:
        button: MenuButtonWebApp | MenuButtonDefault = MenuButtonWebApp(
            text=t("desk_server.menu_button"), web_app=WebAppInfo(url=desk_url(webapp_url))
        )
    else:
        button = MenuButtonDefault()
    try:
        await bot.set_chat_menu_button(chat_id=chat_id, menu_button=button)
    except TelegramAPIError as error:
        log.warning("Could not set a staff member's desk menu button: %s", error.message)
        return False
    return True


async def set_desk_menus(
    bot: Bot, staff: Iterable[tuple[int, Role | None]], webapp_url: str | None, t: Translator
) -> int:
    """At start: each staff member's button; how many Telegram took."""
    done = 0
    for chat_id, role in staff:
        done += await set_desk_menu(bot, chat_id, role, webapp_url, t)
    return done
