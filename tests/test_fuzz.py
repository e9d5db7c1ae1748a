"""Thousands of random updates from users and staff (seeded, bounded): real buttons walked at
random, forged callback data, commands with odd arguments, long and strange texts, replies,
media, contacts and membership changes. The bar: zero tracebacks and zero errors logged."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import pytest

from tests.fake_telegram import Event
from tests.kit import Harness, Person

SEED = 20261130
UPDATES = 1500

PREFIXES = ["v1age", "v1lang", "v1menu", "v1rep", "v1con", "v1unsub", "v1camp", "v1req",
            "v1rights", "v1page", "v0req", "x", ""]  # fmt: skip
WORDS = ["adult", "minor", "married", "en", "ru", "de", "notice", "language", "help", "guardian",
         "consents", "rights", "requests", "home", "confirm", "cancel", "l", "i", "g", "w", "h",
         "x", "marketing", "model_training", "cross_border", "-", "pick", "choice", "skip",
         "back", "submit", "list", "access", "erasure", "rectification", "objection", "take",
         "done", "refuse", "ask", "block", "lift", "restrict", "send", "due", "req"]  # fmt: skip
NUMBERS = ["0", "1", "2", "-1", "9" * 20, "²³", "1e3", "٣", "", "18446744073709551616"]
COMMANDS = ["/start", "/rights", "/requests", "/consents", "/export", "/privacy", "/language",
            "/help", "/cancel", "/due", "/register", "/disclose", "/consent", "/campaign",
            "/notify_policy", "/role", "/unknown", "/start@privacy_desk_test_bot"]  # fmt: skip
TEXTS = ["hello", "", "<b>bold</b> & <i>", "+375 29 123 45 67", "31.12.2030 tax", "-",
         "31.12.1999", "😀" * 50, "\u202e\u0000", "' OR 1=1 --", '"quoted part" rest']  # fmt: skip


def junk(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.5:
        return rng.choice(TEXTS + WORDS + NUMBERS) or "x"
    if kind < 0.8:
        return " ".join(rng.choice(WORDS + NUMBERS + TEXTS) for _ in range(rng.randint(1, 6)))
    alphabet = "abcЖж01 \n<>&\"'😀²"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4096))).strip() or "x"


def bot_messages(bot: Harness, chat_id: int) -> list[dict[str, Any]]:
    return [
        m
        for (chat, _), m in bot.fake.messages.items()
        if chat == chat_id and m.get("from", {}).get("is_bot")
    ]


async def act(bot: Harness, person: Person, rng: random.Random) -> None:
    roll = rng.random()
    messages = bot_messages(bot, person.chat_id)
    if roll < 0.35 and messages:  # a real button of a recent message
        message = rng.choice(messages[-5:])
        rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
        buttons = [b for row in rows for b in row if "callback_data" in b]
        if buttons:
            await person.tap_data(rng.choice(buttons)["callback_data"], message)
            return
    if roll < 0.55:  # forged callback data
        parts = [rng.choice(PREFIXES)]
        parts += [rng.choice(WORDS + NUMBERS) for _ in range(rng.randint(0, 3))]
        data = ":".join(parts).encode()[:64].decode(errors="ignore") or "x"
        message = rng.choice(messages) if messages and rng.random() < 0.5 else None
        await person.tap_data(data, message)
        return
    if roll < 0.78:  # a command with odd arguments
        args = " ".join(junk(rng) for _ in range(rng.randint(0, 4)))
        await person.send(f"{rng.choice(COMMANDS)} {args}".strip()[:4096])
        return
    if roll < 0.92:  # text, sometimes a reply to one of the bot's messages
        reply = None
        if messages and rng.random() < 0.5:
            target = rng.choice(messages)
            reply = Event("message", person.chat_id, target["message_id"], "")
        await person.send(junk(rng)[:4096], reply_to=reply)
        return
    choice = rng.randrange(4)
    if choice == 0:
        await person.send_photo()
    elif choice == 1:
        await person.send_sticker()
    elif choice == 2:
        await person.send_contact(junk(rng)[:30], user_id=rng.choice([person.id, 1, None]))
    else:
        old, new = rng.sample(["member", "kicked", "left"], 2)
        await bot.feed(
            {
                "my_chat_member": {
                    "chat": {"id": person.id, "type": "private", "first_name": "F"},
                    "from": person.as_user(),
                    "date": int(time.time()),
                    "old_chat_member": {"status": old, "user": bot.fake.bot_user, "until_date": 0},
                    "new_chat_member": {"status": new, "user": bot.fake.bot_user, "until_date": 0},
                }
            }
        )


async def test_random_updates_never_break_the_bot(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    rng = random.Random(SEED)
    people = [bot.user(f"U{i}", lang=lang) for i, lang in enumerate(["en", "ru", None, "de"])]
    people += [bot.staff("Sam"), bot.staff("Kim"), bot.staff("Mallory", status="member")]
    for i in range(UPDATES):
        await act(bot, rng.choice(people), rng)
        if i % 100 == 99:
            await bot.app.outbox.run_once(bot.app.bot)
    await bot.app.outbox.run_once(bot.app.bot)
    broken = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not broken, [f"{r.getMessage()} {r.exc_text or ''}" for r in broken[:3]]
