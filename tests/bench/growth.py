"""The growth benchmark: on a synthetic database of many users and consent events, /consents
p95, the export of a user with 10,000 events, an erasure and how long it holds the database."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.domain.export import build_export, export_bytes
from storage.repositories import Repositories
from tests.bench.common import FIRST_ID, Rider, feeder, fill
from tests.fake_telegram import FakeTelegram
from tests.kit import Harness


async def bench_growth(users: int, events: int) -> dict[str, Any]:
    logging.disable(logging.CRITICAL)
    fake = FakeTelegram()
    await fake.start()
    result: dict[str, Any] = {"users": users, "events": events}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        harness = Harness(fake, Path(folder))
        await harness.start()
        started = time.perf_counter()
        await fill(harness, users, events, heavy_events=10_000)
        result["build_s"] = time.perf_counter() - started
        app = harness.app
        feed = feeder(app.dispatcher, app.bot)

        # /consents for random users: the whole update, end to end.
        latencies = []
        step = max(1, users // 200)
        for uid in range(FIRST_ID + 1, FIRST_ID + users, step):
            rider = Rider(fake, uid)
            fake.add_private_chat(rider.user())
            began = time.perf_counter()
            await feed(rider.message_update("/consents"))
            latencies.append(time.perf_counter() - began)
        latencies.sort()
        result["consents_p95_ms"] = 1000 * latencies[int(0.95 * (len(latencies) - 1))]

        # The export of the user with 10,000 events.
        began = time.perf_counter()
        async with app.sessions() as session:
            repo = Repositories(session)
            user = await repo.users.get(FIRST_ID)
            assert user is not None
            export = await build_export(repo, user, app.pack, app.clock)
            export_bytes(export)
        result["export_ms"] = 1000 * (time.perf_counter() - began)
        result["export_events"] = len(export["consents"]["ledger"])

        # An erasure, while a probe writer measures how long the database is held.
        holds: list[float] = []
        stop = asyncio.Event()

        async def probe() -> None:
            while not stop.is_set():
                began = time.perf_counter()
                async with app.engine.begin() as connection:
                    await connection.exec_driver_sql(
                        "INSERT INTO bot_state (key, value) VALUES ('bench', '1') "
                        "ON CONFLICT (key) DO UPDATE SET value = value"
                    )
                holds.append(time.perf_counter() - began)
                await asyncio.sleep(0.002)

        victim = FIRST_ID + users // 2
        fake.add_private_chat(Rider(fake, victim).user())
        prober = asyncio.create_task(probe())
        await asyncio.sleep(0.2)
        baseline = max(holds) if holds else 0.0
        began = time.perf_counter()
        await app.erasure.execute(app.bot, victim, cause="bench", notice="requests.hold_ended")
        result["erasure_ms"] = 1000 * (time.perf_counter() - began)
        await asyncio.sleep(0.2)
        stop.set()
        await prober
        result["max_hold_ms"] = 1000 * max(holds)
        result["probe_baseline_ms"] = 1000 * baseline
        await harness.stop()
    await fake.stop()
    return result


def print_growth(result: dict[str, Any]) -> None:
    print(
        f"growth benchmark: {result['users']:,} users, {result['events']:,} consent events "
        f"(built in {result['build_s']:.0f} s)"
    )
    print(f"  /consents p95: {result['consents_p95_ms']:.1f} ms (whole update)")
    print(
        f"  export of a user with {result['export_events']:,} events: {result['export_ms']:.0f} ms"
    )
    print(
        f"  erasure: {result['erasure_ms']:.0f} ms (with telling the user and redacting cards); "
        f"longest wait of a concurrent writer: {result['max_hold_ms']:.0f} ms "
        f"(before the erasure: {result['probe_baseline_ms']:.0f} ms)"
    )
