"""The start-up benchmark: from spawning the process to its first getUpdates, `python -m bot`
against a bare aiogram bot (`tests.bench.child bare-bot`), interleaved."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.bench.common import child_env
from tests.fake_telegram import FakeTelegram
from tests.kit import ADMIN_CHAT_ID


class PollWatch(FakeTelegram):
    """The fake Bot API noting when a bot first asks for updates: it is serving from then on."""

    def __init__(self) -> None:
        super().__init__()
        self.polled = asyncio.Event()

    async def _m_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        self.polled.set()
        return await super()._m_getUpdates(params)


async def time_to_first_poll(
    fake: PollWatch, args: list[str], env: dict[str, str], cwd: Path
) -> float:
    fake.polled.clear()
    began = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    waiter = asyncio.create_task(fake.polled.wait())
    exited = asyncio.create_task(process.wait())
    await asyncio.wait({waiter, exited}, return_when=asyncio.FIRST_COMPLETED)
    elapsed = time.perf_counter() - began
    if not waiter.done():
        assert process.stderr is not None
        raise RuntimeError(f"{args} exited: {(await process.stderr.read()).decode()[-2000:]}")
    waiter.cancel()
    process.terminate()
    await exited
    return elapsed


async def bench_startup(rounds: int) -> dict[str, Any]:
    """From spawning the process to its first getUpdates: a bare aiogram bot (`bare-bot`) and
    `python -m bot` on SQLite, interleaved; the bot's first start migrates a new database, the
    later ones (a restart, the usual case) find it migrated."""
    fake = PollWatch()
    await fake.start()
    fake.add_group(ADMIN_CHAT_ID, "Privacy staff")
    times: dict[str, list[float]] = {"bare": [], "bot": []}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        cwd = Path(folder)
        bot_env = child_env(fake, f"sqlite+aiosqlite:///{cwd / 'bot.db'}")
        first = await time_to_first_poll(fake, ["-m", "bot"], bot_env, cwd)
        for _ in range(rounds):
            bare = ["-m", "tests.bench.child", "bare-bot"]
            times["bare"].append(await time_to_first_poll(fake, bare, child_env(fake), cwd))
            times["bot"].append(await time_to_first_poll(fake, ["-m", "bot"], bot_env, cwd))
    await fake.stop()
    ratios = [b / a for a, b in zip(times["bare"], times["bot"], strict=True)]
    return {"first_start": first, **times, "ratios": ratios}


def print_startup(result: dict[str, Any]) -> None:
    print("start-up to the first getUpdates (seconds; the bot on an already migrated database):")
    for label in ("bare", "bot"):
        values = result[label]
        print(f"  {label}: min {min(values):.2f}, median {statistics.median(values):.2f}")
    ratios = result["ratios"]
    print(f"  bot/bare per round: min {min(ratios):.2f}, median {statistics.median(ratios):.2f}")
    print(f"  the bot's first start (migrating a new database): {result['first_start']:.2f}")
