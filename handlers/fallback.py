"""Bad input in the private chat: clear answers, no changes. Included last."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.core.i18n import Translator
from bot.telegram.filters import Magic
from storage.models import User


async def unknown_command(message: Message, t: Translator) -> None:
    await message.answer(t("common.unknown_command"))


async def free_text(message: Message, state: FSMContext, user: User | None, t: Translator) -> None:
    if user is None and await state.get_state() is None:
        await message.answer(t("common.start_first"))
    elif await state.get_state() is not None or (user is not None and user.age_group is None):
        await message.answer(t("common.use_buttons"))
    else:
        await message.answer(t("common.free_text"))


async def not_text(message: Message, t: Translator) -> None:
    await message.answer(t("common.not_text"))


async def unknown_button(query: CallbackQuery, t: Translator) -> None:
    """Forged data, buttons of an older release, or buttons in the wrong chat."""
    await query.answer(t("common.stale_button"), show_alert=True)


def router() -> Router:
    r = Router(name="fallback")
    r.message.register(unknown_command, Magic(F.text.startswith("/")))
    r.message.register(free_text, Magic(F.text))
    r.message.register(not_text)
    return r


def stale_buttons() -> Router:
    """Forged data, buttons of an older release, or buttons in the wrong chat."""
    r = Router(name="stale-buttons")
    r.callback_query.register(unknown_button)
    return r
