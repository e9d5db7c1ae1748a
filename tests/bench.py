"""Throughput benchmark: `python -m tests.bench [users] [concurrency]`.

Drives the real bot (production wiring, SQLite file, aiogram's HTTP client) against the fake
Bot API server: each user sends /start, answers the age gate and switches a consent on, with
`concurrency` users in flight at once, as long polling with handle_as_tasks would. Prints
updates per second and users per second. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from tests.fake_telegram import FakeTelegram
from tests.kit import Harness, Person

UPDATES_PER_USER = 5  # /start, age gate, /consents, info screen, agree


async def one_user(person: Person) -> None:
    await person.send("/start")
    await person.tap("16 or older")
    await person.send("/consents")
    await person.tap("⬜ Marketing messages")
    await person.tap("✅ I agree")


async def main(users: int, concurrency: int) -> None:
    logging.disable(logging.CRITICAL)
    fake = FakeTelegram()
    await fake.start()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        bot = Harness(fake, Path(folder))
        await bot.start()
        people = [bot.user(f"U{i}") for i in range(users)]
        gate = asyncio.Semaphore(concurrency)

        async def run(person: Person) -> None:
            async with gate:
                await one_user(person)

        started = time.perf_counter()
        await asyncio.gather(*(run(p) for p in people))
        elapsed = time.perf_counter() - started
        await bot.stop()
    await fake.stop()
    updates = users * UPDATES_PER_USER
    print(f"users={users} concurrency={concurrency} elapsed={elapsed:.2f}s")
    print(f"updates/s={updates / elapsed:.0f} users/s={users / elapsed:.0f}")
    print(f"bot API calls={len(fake.calls)}")


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:]]
    asyncio.run(main(*(arguments + [500, 50][len(arguments) :])))
