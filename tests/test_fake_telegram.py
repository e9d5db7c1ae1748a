"""The fake Bot API answers like Telegram, so error branches are testable with real exceptions."""

from __future__ import annotations

import logging

import pytest
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlalchemy import select

from storage.models import OutboxItem
from tests.kit import Harness
from tests.test_guardian import confirmations, minor_with_link


async def test_errors_map_to_aiogram_exceptions(bot: Harness) -> None:
    ann = bot.user("Ann")
    api = bot.app.bot
    bot.fake.fail("sendMessage", chat_id=ann.id, status=429, description="Too Many", retry_after=3)
    with pytest.raises(TelegramRetryAfter) as retry:
        await api.send_message(ann.id, "hi")
    assert retry.value.retry_after == 3
    await api.send_message(ann.id, "hi")  # one failure only

    bot.fake.blocked.add(ann.id)
    with pytest.raises(TelegramForbiddenError, match="blocked by the user"):
        await api.send_message(ann.id, "hi")
    bot.fake.blocked.clear()

    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await api.send_message(424242, "hi")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await api.send_message(ann.id, "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await api.send_message(ann.id, "<script>alert(1)</script>")
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        button = InlineKeyboardButton(text="x", callback_data="y" * 65)
        markup = InlineKeyboardMarkup(inline_keyboard=[[button]])
        await api.send_message(ann.id, "hi", reply_markup=markup)
    sent = await api.send_message(ann.id, "same")
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await api.edit_message_text("same", chat_id=ann.id, message_id=sent.message_id)


async def test_confirmation_is_kept_when_the_minor_blocked_the_bot(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    kid, payload = await minor_with_link(bot)
    bot.fake.blocked.add(kid.id)
    mum = bot.user("Mum")
    await mum.send(f"/start {payload}")
    await mum.tap("I am 16 or older")
    await mum.tap("✅ I am the legal representative")
    mum.expect("Recorded that you are the legal representative")
    await bot.settle()
    assert len(await confirmations(bot)) == 1
    async with bot.app.sessions() as session:
        [kept] = list(await session.scalars(select(OutboxItem).where(OutboxItem.user_id == kid.id)))
    assert kept.status == "blocked" and "Your legal representative confirmed" in (kept.text or "")
    assert not [r for r in caplog.records if r.exc_info]
