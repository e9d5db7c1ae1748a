"""One error handler, forged numbers, secrets and files, start-up refusals, the block signal."""

from __future__ import annotations

import logging
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from aiogram import F, Router
from aiogram.types import Message
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from storage.db import create_engine
from storage.repositories import Repositories
from tests.fake_telegram import TOKEN, FakeTelegram
from tests.kit import Harness
from tests.test_campaigns import campaign_messages, start_campaign, subscriber
from tests.test_consents import onboarded
from tests.test_settings import BASE, GOOD_TOKEN, SETTINGS, start_with


async def test_an_unexpected_error_rolls_back_answers_and_logs_one_line(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Router(name="broken")

    async def explode(message: Message, repo: Repositories) -> None:
        await repo.users.create(
            message.chat.id, language="en", username=None, first_name="X", last_name=None,
            now=bot.app.clock.now(),
        )  # fmt: skip
        raise RuntimeError("a bug")

    broken.message.register(explode, F.text == "boom")
    bot.app.dispatcher.sub_routers.insert(0, broken)
    broken._parent_router = bot.app.dispatcher
    caplog.set_level(logging.INFO)
    ann = bot.user("Ann")
    await ann.send("boom")
    ann.expect("Nothing was changed; please try again")
    async with bot.app.sessions() as session:
        assert await Repositories(session).users.get(ann.id) is None  # rolled back
    failures = [r for r in caplog.records if r.exc_info]
    assert len(failures) == 1 and "Update " in failures[0].getMessage()
    assert "Ann" not in caplog.text

    # A button whose handler breaks is answered (no endless spinner), in the user's language.
    await onboarded(bot, "Ben")
    ben = bot.user("Ben2", lang="ru")
    await ben.send("/start")
    caplog.clear()

    async def explode_button(*_: Any, **__: Any) -> None:
        raise RuntimeError("another bug")

    from handlers.private import onboarding as onboarding_handlers

    original = onboarding_handlers.Onboarding.answer_age
    onboarding_handlers.Onboarding.answer_age = explode_button  # type: ignore[method-assign]
    try:
        await ben.tap("16 лет или старше")
    finally:
        onboarding_handlers.Onboarding.answer_age = original  # type: ignore[method-assign]
    answer = ben.expect("Ничего не изменено")
    assert answer.kind == "answer" and answer.show_alert
    assert len([r for r in caplog.records if r.exc_info]) == 1


async def test_forged_numbers_are_refused_cleanly(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ann = await subscriber(bot, "Ann")
    staff = bot.staff("Sam")
    huge = "9" * 20
    for data in (
        f"v1req:{huge}:done",
        f"v1camp:{huge}:send",
        "v1req:-5:take",
        f"v1page:due:{huge}",
    ):
        await staff.tap_data(data)
        staff.expect("больше не действует")
    await ann.tap_data(f"v1unsub:{huge}")
    ann.expect("no longer active")
    await ann.tap_data(f"v1con:g:marketing:{huge}")
    ann.expect("no longer active")
    for command in ("/consent ²³ marketing on", f"/consent {huge} marketing on"):
        await staff.send(command)
        staff.expect("/consent")
    await staff.send(f'/disclose {huge} "Tax office" "name" "law"')
    staff.expect("/disclose")
    await staff.send(f"/role {huge} agent")
    staff.expect("/role")
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_sql_errors_carry_no_parameters(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/x.db", tmp_path / "x.db")
    try:
        async with engine.connect() as connection:
            with pytest.raises(SQLAlchemyError) as error:
                await connection.execute(
                    text("INSERT INTO nowhere VALUES (:name)"),
                    {"name": "Quuxbertina +375291234567"},
                )
        assert "Quuxbertina" not in str(error.value)
    finally:
        await engine.dispose()


async def test_database_files_are_private(bot: Harness, tmp_path: Path) -> None:
    ann = await onboarded(bot, "Ann")
    await ann.send("/consents")
    nested = tmp_path / "deep" / "data" / "bot.db"
    engine = create_engine(f"sqlite+aiosqlite:///{nested}", nested)
    await engine.dispose()
    assert stat.S_IMODE(nested.parent.stat().st_mode) == 0o700
    for path in (bot.db_path, nested, bot.db_path.with_name("bot.db-wal")):
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({**BASE, "PSEUDONYM_SECRET": "replace-with-a-long-random-string"}, "placeholder"),
        ({**BASE, "PSEUDONYM_SECRET": " " * 20}, "whitespace"),
        ({**BASE, "ADMIN_CHAT_ID": "99999999999999999999"}, "ADMIN_CHAT_ID"),
        ({**BASE, "ADMIN_CHAT_ID": "0"}, "ADMIN_CHAT_ID"),
        ({**BASE, "DATABASE_URL": "mysql+aiomysql://u@h/db"}, "not installed"),
        ({**BASE, "DATABASE_URL": "sqlite+aiosqlite://"}, "in-memory"),
        ({**BASE, "DATABASE_URL": "sqlite+aiosqlite:///:memory:"}, "in-memory"),
        ({**BASE, "DATABASE_URL": "sqlite+aiosqlite:///a-file/data/bot.db"}, "not writable"),
        ({**BASE, "TELEGRAM_API_URL": "http://[bad"}, "TELEGRAM_API_URL"),
    ],
)  # fmt: skip
def test_start_refuses_with_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    named: str,
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    assert start_with(env, tmp_path, monkeypatch) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1, err
    assert named in lines[0] and GOOD_TOKEN not in err


def test_an_unreachable_api_ends_with_one_line_before_migrations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    unreachable = {**BASE, "TELEGRAM_API_URL": "http://127.0.0.1:9"}
    assert start_with(unreachable, tmp_path, monkeypatch) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "Cannot reach the Bot API" in err and GOOD_TOKEN not in err
    assert "alembic" not in err and "Running upgrade" not in err  # asked before migrating


async def test_a_rejected_token_ends_before_migrations(fake: FakeTelegram, tmp_path: Path) -> None:
    import asyncio
    import os
    import sys

    from tests.test_startup import ROOT

    env = {
        **{k: v for k, v in os.environ.items() if k not in SETTINGS},
        "PYTHONPATH": str(ROOT),
        **BASE,
        "BOT_TOKEN": "123456789:WRONG-token-for-the-fake-bot-api-00",
        "TELEGRAM_API_URL": fake.url,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 2
    assert stderr.decode().strip().splitlines() == [
        "Configuration error: BOT_TOKEN was rejected by the Bot API (401)"
    ]
    assert TOKEN not in stderr.decode()


async def test_blocking_and_unblocking_the_bot_is_seen_at_once(bot: Harness) -> None:
    ann = await subscriber(bot, "Ann")
    staff = bot.staff("Sam")

    async def member_update(old: str, new: str) -> None:
        await bot.feed(
            {
                "my_chat_member": {
                    "chat": {"id": ann.id, "type": "private", "first_name": "Ann"},
                    "from": ann.as_user(),
                    "date": int(time.time()),
                    "old_chat_member": {"status": old, "user": bot.fake.bot_user, "until_date": 0},
                    "new_chat_member": {"status": new, "user": bot.fake.bot_user, "until_date": 0},
                }
            }
        )

    await member_update("member", "kicked")
    await start_campaign(bot, staff, "Big sale while blocked")
    await bot.settle()
    assert campaign_messages(ann, "while blocked") == []
    attempts = [
        c
        for c in bot.fake.calls
        if str(c[1].get("chat_id")) == str(ann.id) and "while blocked" in str(c[1].get("text"))
    ]
    assert attempts == []  # not even attempted
    await member_update("kicked", "member")  # no /start needed
    await start_campaign(bot, staff, "Big sale after unblocking")
    await bot.settle()
    assert len(campaign_messages(ann, "after unblocking")) == 1


def test_no_secret_reaches_the_log_not_even_in_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    from bot.service.config import load_settings
    from bot.service.logs import RedactSecrets

    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    env = {
        **BASE,
        "DATABASE_URL": "postgresql+asyncpg://bot:db-pass-w0rd@db:5432/bot",
        "REDIS_URL": "redis://:redis-pass-w0rd@redis:6379/0",
        "WEBHOOK_URL": "https://bot.example.org/hook",
        "WEBHOOK_SECRET": "webhook-secret-w0rd",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    secrets = [GOOD_TOKEN, "db-pass-w0rd", "redis-pass-w0rd", "webhook-secret-w0rd"]
    secrets.append(settings.pseudonym_secret.get_secret_value())
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets(settings.secrets()))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    try:
        logger.warning("token %s in a message", GOOD_TOKEN)
        try:  # what aiohttp says of a malformed URL: the path carries bot<TOKEN>
            raise ValueError(f"InvalidURL http://[bad/bot{GOOD_TOKEN}/getMe " + " ".join(secrets))
        except ValueError:
            logger.exception("Request failed")
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert "Traceback" in written and "<redacted>" in written
    assert not [secret for secret in secrets if secret in written]


async def test_logs_carry_no_names_texts_or_phones(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.kit import ADMIN_CHAT_ID
    from tests.test_requests import file_erasure

    caplog.set_level(logging.DEBUG)
    for noisy in ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool"):  # as in production
        caplog.set_level(logging.WARNING, logger=noisy)
    ann = await onboarded(bot, "Quuxbertina")
    ann.username = "zyxwvutson"
    staff = bot.staff("Sam")
    await ann.send("/start")  # the @username is stored
    await file_erasure(bot, ann, "Secret reason Plumbago")
    await bot.settle()
    [card] = bot.cards()
    bot.fake.fail("sendMessage", chat_id=ann.id, status=400, description="Bad Request: nope")
    await staff.reply_to(card, "Staff text Wisteria")  # fails for good: logged, without it
    await bot.settle()
    await ann.reply_to(ann.inbox[-1], "User text Hollyhock")
    await staff.reply_to(card, "Staff text Foxglove")
    await bot.settle()
    await staff.tap_data("v1req:1:done", bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)])
    await bot.settle()
    logged = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert caplog.records  # the bot did log
    for private in ("Quuxbertina", "Zyxwvutson", "Plumbago", "Wisteria", "Hollyhock",
                    "Foxglove", "123-45-67", "291234567", TOKEN):  # fmt: skip
        assert private not in logged, private
