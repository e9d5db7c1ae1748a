"""Start-up: the real entry point against the fake Bot API, the admin group check, migration."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.fake_telegram import TOKEN, FakeTelegram
from tests.kit import ADMIN_CHAT_ID, DATA_KEY, Harness

ROOT = Path(__file__).parent.parent


async def wait_for(condition) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(120):
        while not condition():  # noqa: ASYNC110 - the effect comes from another process
            await asyncio.sleep(0.05)


async def test_python_m_bot_serves_a_user_over_long_polling(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    fake.add_group(ADMIN_CHAT_ID, "Staff")
    user = {"id": 777, "is_bot": False, "first_name": "Ann", "language_code": "en"}
    fake.add_private_chat(user)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BOT_TOKEN": TOKEN,
        "ADMIN_CHAT_ID": str(ADMIN_CHAT_ID),
        "PSEUDONYM_SECRET": "x" * 32,
        "DATA_KEY": DATA_KEY,
        "TELEGRAM_API_URL": fake.url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        "LOG_LEVEL": "DEBUG",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        fake.push_update(
            {
                "message": {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": 777, "type": "private", "first_name": "Ann"},
                    "from": user,
                    "text": "/start",
                    "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
                }
            }
        )
        await wait_for(lambda: any("How old are you?" in e.text for e in fake.events))
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    log = stderr.decode()
    assert process.returncode == 0, log
    assert "the bot can post there" in log
    assert TOKEN not in log and TOKEN.split(":")[1] not in log
    assert "Ann" not in log  # no names (nor texts) in the log, even at DEBUG
    assert "Traceback" not in log
    assert (tmp_path / "bot.db").exists()


async def test_start_without_access_to_the_admin_group(
    fake: FakeTelegram, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fake.add_group(ADMIN_CHAT_ID, "Staff", bot_status="left")
    harness = Harness(fake, tmp_path)
    await harness.start()
    try:
        assert "cannot post" in caplog.text
        ann = harness.user("Ann")
        await ann.send("/start")  # users are served all the same
        ann.expect("How old are you?")
    finally:
        await harness.stop()

    fake.remove_chat(ADMIN_CHAT_ID)
    caplog.clear()
    harness = Harness(fake, tmp_path)
    fake.remove_chat(ADMIN_CHAT_ID)
    await harness.start()
    try:
        assert "cannot reach it (Bad Request: chat not found)" in caplog.text
    finally:
        await harness.stop()


async def test_admin_group_upgraded_to_supergroup(bot: Harness) -> None:
    new_id = -1009999999999
    staff = bot.staff("Sam")
    await bot.feed(
        {
            "message": {
                "message_id": 99,
                "date": 0,
                "chat": {"id": ADMIN_CHAT_ID, "type": "group", "title": "Staff"},
                "from": staff.as_user(),
                "migrate_to_chat_id": new_id,
            }
        }
    )
    assert bot.app.admin_chat.id == new_id
    bot.fake.add_group(new_id, "Staff")
    await bot.restart()
    assert bot.app.admin_chat.id == new_id  # remembered across restarts


async def test_without_redis_the_bot_does_not_load_its_client() -> None:
    """Start-up time is spent on what the instance uses: Redis's client only with REDIS_URL."""
    probe = (
        "import sys, bot.service.app; "
        "print(sorted(m for m in sys.modules if m.startswith('redis')))"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", probe, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0 and out.decode().strip() == "[]"
