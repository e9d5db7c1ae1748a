"""The processes the benchmark (`python -m tests.bench`) starts beside itself, so that what they
measure is not shared with the fake Bot API server or the harness:

`python -m tests.bench.child sender RATE BUDGET`  the bot's own campaign runner, wired as
    `python -m bot` wires it (settings from the environment), sending the campaigns already
    queued in the database at RATE deliveries/s (`inf`: uncapped) until they are done or BUDGET
    seconds have passed; prints one JSON line: sent, RSS after start-up and peak RSS (MB).
`python -m tests.bench.child bare-sender N`  the ceiling: N sendMessage calls through a bare
    aiogram Bot, 32 in flight, no database.
`python -m tests.bench.child bare-bot`  a bare aiogram bot in long polling (start-up reference).

Imports nothing from the test kit: the resident memory is the bot's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time


def memory_mb() -> dict[str, float]:
    """Resident set now and its peak (VmRSS, VmHWM) in MB."""
    found: dict[str, float] = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) / 1024
    return {"rss_mb": found["VmRSS"], "peak_mb": found["VmHWM"]}


async def sender(rate: float, budget: float) -> dict[str, float]:
    from bot.core.packs import load_pack
    from bot.service.app import build_app
    from bot.service.config import load_settings

    settings = load_settings()
    app = await build_app(settings, load_pack(settings.policy_pack))
    after_start = memory_mb()["rss_mb"]
    runner = app.campaigns
    runner.rate = rate  # the settings cap BROADCAST_RATE at Telegram's 30/s; `inf` is bench-only
    await app.bot.get_me()  # a warm connection, as a running bot has
    began = time.perf_counter()
    await runner.resume(app.bot)
    with contextlib.suppress(TimeoutError):  # the budget ran out: stop sends like a shutdown
        await asyncio.wait_for(asyncio.shield(runner.drain()), budget)
    elapsed = time.perf_counter() - began
    await app.close()
    return {"seconds": elapsed, "rss_after_start_mb": after_start, **memory_mb()}


async def bare_sender(count: int) -> dict[str, float]:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    url = os.environ["TELEGRAM_API_URL"]
    session = AiohttpSession(api=TelegramAPIServer.from_base(url))
    bot = Bot(os.environ["BOT_TOKEN"], session=session)
    chat_id = int(os.environ["BENCH_CHAT_ID"])
    gate = asyncio.Semaphore(32)

    async def send(_: int) -> None:
        async with gate:
            await bot.send_message(chat_id, "Sale")

    await bot.get_me()
    began = time.perf_counter()
    await asyncio.gather(*(send(i) for i in range(count)))
    elapsed = time.perf_counter() - began
    await bot.session.close()
    return {"seconds": elapsed, **memory_mb()}


async def bare_bot() -> None:
    from aiogram import Bot, Dispatcher
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.filters import CommandStart
    from aiogram.types import Message

    session = AiohttpSession(api=TelegramAPIServer.from_base(os.environ["TELEGRAM_API_URL"]))
    bot = Bot(os.environ["BOT_TOKEN"], session=session)
    dispatcher = Dispatcher()

    @dispatcher.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer("Hello")

    await dispatcher.start_polling(bot, handle_signals=True)


def main(argv: list[str]) -> None:
    match argv:
        case ["sender", rate, budget]:
            print(json.dumps(asyncio.run(sender(float(rate), float(budget)))))
        case ["bare-sender", count]:
            print(json.dumps(asyncio.run(bare_sender(int(count)))))
        case ["bare-bot"]:
            asyncio.run(bare_bot())
        case _:
            raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
