"""Bad input gets a clear answer (or silence where Telegram users expect it) and changes nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.kit import ADMIN_CHAT_ID, Harness

TABLES = ("users", "guardian_links", "guardian_confirmations", "fsm_states", "bot_state")


async def snapshot(bot: Harness) -> dict[str, list[tuple[object, ...]]]:
    # The daily jobs (retention run, reminder) are background work, not a change: run them first.
    await bot.app.reminders.retention.run(bot.app.bot)
    await bot.app.reminders.tick()
    async with bot.app.sessions() as session:
        return {
            table: [tuple(row) for row in (await session.execute(text(f"SELECT * FROM {table}")))]
            for table in TABLES
        }


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO)
    yield
    broken = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not broken, [r.getMessage() for r in broken]


@pytest.mark.usefixtures("no_tracebacks")
async def test_before_start(bot: Harness) -> None:
    ann = bot.user("Ann")
    before = await snapshot(bot)
    await ann.send("hello")
    ann.expect("Press /start to begin")
    await ann.send("/language")
    ann.expect("Press /start to begin")
    await ann.send("/cancel")
    ann.expect("Press /start to begin")
    await ann.tap_data("v1age:adult")
    assert ann.expect("Press /start to begin").show_alert
    await ann.tap_data("v1menu:notice")
    ann.expect("Press /start to begin")
    assert await snapshot(bot) == before


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize(
    ("lang", "unknown", "buttons", "media", "stale"),
    [
        ("en", "I don't know that command", "Please answer with the buttons", "only read text",
         "no longer active"),
        ("ru", "Я не знаю такой команды", "Пожалуйста, ответьте кнопками", "понимаю только текст",
         "больше не действует"),
    ],
)  # fmt: skip
async def test_bad_input_at_the_age_gate(
    bot: Harness, lang: str, unknown: str, buttons: str, media: str, stale: str
) -> None:
    ann = bot.user("Ann", lang=lang)
    await ann.send("/start")
    before = await snapshot(bot)

    await ann.send("/frobnicate")
    ann.expect(unknown)
    await ann.send("I am 30")
    ann.expect(buttons)
    await ann.send("x" * 4096)
    ann.expect(buttons)
    await ann.send_photo()
    ann.expect(media)
    await ann.send_sticker()
    ann.expect(media)
    await ann.send_contact("+375291234567", user_id=ann.id)
    ann.expect(media)
    for forged in ("v1age:grandparent", "v0age:adult", "garbage", "v1lang:de", "v1rep:confirm"):
        await ann.tap_data(forged)
        assert ann.expect(stale).show_alert
    assert await snapshot(bot) == before


@pytest.mark.usefixtures("no_tracebacks")
async def test_bad_input_after_onboarding(bot: Harness) -> None:
    ann = bot.user("Ann")
    await ann.send("/start")
    await ann.tap("16 or older")
    before = await snapshot(bot)
    await ann.send("y" * 4096)
    ann.expect("I work with buttons and commands")
    await ann.send("/start@someone_elses_bot")
    ann.expect("I don't know that command")
    await ann.send("/rights_of_man")
    ann.expect("I don't know that command")
    assert await snapshot(bot) == before


@pytest.mark.usefixtures("no_tracebacks")
async def test_other_groups_are_ignored(bot: Harness) -> None:
    ann = bot.user("Ann")
    in_group = ann.in_chat(-100777, "supergroup")
    before = await snapshot(bot)
    for message in ("/start", "/help", "hello", "/privacy"):
        await in_group.send(message)
        in_group.expect_silence()
    await in_group.send_photo()
    in_group.expect_silence()
    await in_group.tap_data("v1age:adult")
    assert in_group.expect("no longer active").show_alert  # a press must be answered
    assert await snapshot(bot) == before


@pytest.mark.usefixtures("no_tracebacks")
async def test_admin_group_chatter_is_ignored(bot: Harness) -> None:
    staff = bot.staff("Sam")
    before = await snapshot(bot)
    await staff.send("good morning")
    staff.expect_silence()
    await staff.tap_data("v1age:adult")
    staff.expect("больше не действует")  # ADMIN_LOCALE defaults to DEFAULT_LOCALE (ru)
    assert await snapshot(bot) == before
    assert staff.chat_id == ADMIN_CHAT_ID
