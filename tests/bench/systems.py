"""The systems benchmark: one erasure request carried out across three SQL systems (the hosting
pack's demo account database: accounts, services, orders, invoices), each holding N people, the
three connectors run side by side as the worker runs them. Prints the time per request (median
and p95) at a small and a large size, how it grows (a lookup through an index grows with log N,
a scan with N), and each lookup's query plan, showing the indexes used.

Three SQLite files by default; `--system-engines sqlite,postgresql,mariadb` puts one system on
each engine (the servers of tests/systems_servers.py, in a database of the run's own)."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bot.core.law import RequestType
from bot.core.packs import load_pack
from bot.delivery.systems.sql import SqlConnector
from bot.domain.systems import Done, Subject, Work
from storage.external import open_engine
from storage.external.demo import bench_person, fill_demo
from tests import systems_servers as servers

DEMO = "gdpr_hosting.accounts"
LOOKUPS = {
    "accounts": "SELECT id FROM accounts WHERE telegram_id = 10000007",
    "services": "SELECT id FROM services WHERE account_id IN (8, 9)",
    "invoices": "SELECT id FROM invoices WHERE account_id = 8",
}


async def _plans(url: str) -> dict[str, str]:
    engine = open_engine(url)
    plans = {}
    try:
        async with engine.connect() as connection:
            kind = connection.dialect.name
            for table, sql in LOOKUPS.items():
                prefix = "EXPLAIN QUERY PLAN " if kind == "sqlite" else "EXPLAIN "
                rows = (await connection.execute(text(prefix + sql))).all()
                if kind == "mysql":  # id, select_type, table, type, possible_keys, key, ...
                    plans[table] = f"type={rows[0][3]} key={rows[0][5]}"
                else:
                    plans[table] = " / ".join(str(r[-1]) for r in rows)
    finally:
        await engine.dispose()
    return plans


async def _databases(engines: list[str], people: int, folder: Path) -> list[str]:
    """One filled database per system (SQLite files: filled once, then copied)."""
    urls: list[str] = []
    first_sqlite: Path | None = None
    for number, kind in enumerate(engines):
        if kind == "sqlite":
            path = folder / f"system{number}_{people}.db"
            if first_sqlite is None:
                engine = open_engine(f"sqlite+aiosqlite:///{path}")
                await fill_demo(engine, DEMO, people)
                await engine.dispose()
                first_sqlite = path
            else:
                shutil.copy(first_sqlite, path)
            urls.append(f"sqlite+aiosqlite:///{path}")
            continue
        servers.require(kind)
        await servers.empty(kind)
        url = servers.database_url(kind, folder)
        engine = open_engine(url)
        await fill_demo(engine, DEMO, people)
        async with engine.begin() as connection:  # fresh statistics, as autovacuum would make
            for table in ("accounts", "services", "orders", "invoices"):
                await connection.execute(
                    text(f"ANALYZE {'TABLE ' if kind == 'mariadb' else ''}{table}")
                )
        await engine.dispose()
        urls.append(url)
    return urls


async def _erasures(urls: list[str], people: int, requests: int) -> dict[str, Any]:
    system = load_pack("gdpr_hosting").system("accounts")
    assert system is not None
    connectors = [SqlConnector(system, url, "bench-pseudonym-secret") for url in urls]
    chosen = random.Random(7).sample(range(people), requests)
    times: list[float] = []
    per_system: list[list[float]] = [[] for _ in connectors]

    async def timed(number: int, connector: SqlConnector, work: Work) -> object:
        began = time.perf_counter()
        outcome = await connector.run(work)
        per_system[number].append(time.perf_counter() - began)
        return outcome

    try:
        for connector in connectors:  # reflect and open the pools before timing
            assert await connector.check() == []
        for job, n in enumerate(chosen, 1):
            person = bench_person(n)
            work = Work(job, RequestType.ERASURE, Subject(person.telegram_id, person.phone), job)
            began = time.perf_counter()
            outcomes = await asyncio.gather(*(timed(i, c, work) for i, c in enumerate(connectors)))
            times.append(time.perf_counter() - began)
            for outcome in outcomes:
                assert isinstance(outcome, Done), outcome
                assert outcome.counts == {
                    "accounts": 1,
                    "services": 2,
                    "orders": 1,
                    "invoices": 1,
                }
    finally:
        for connector in connectors:
            await connector.close()
    times.sort()
    return {
        "median_ms": 1000 * statistics.median(times),
        "p95_ms": 1000 * times[int(0.95 * (len(times) - 1))],
        "system_median_ms": [1000 * statistics.median(t) for t in per_system],
    }


async def bench_systems(
    people: int, small: int, requests: int, engines: list[str]
) -> dict[str, Any]:
    result: dict[str, Any] = {"engines": engines, "requests": requests, "sizes": {}}
    try:
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as name:
            folder = Path(name)
            for size in dict.fromkeys((small, people)):
                began = time.perf_counter()
                urls = await _databases(engines, size, folder)
                built = time.perf_counter() - began
                plans = {kind: await _plans(url) for kind, url in zip(engines, urls, strict=True)}
                timing = await _erasures(urls, size, requests)
                result["sizes"][size] = {"build_s": built, "plans": plans, **timing}
    finally:
        servers.drop_databases()
    return result


def print_systems(result: dict[str, Any]) -> None:
    engines = ", ".join(result["engines"])
    print(f"\nErasure across three SQL systems ({engines}), {result['requests']} requests each")
    sizes = result["sizes"]
    for size, figures in sizes.items():
        print(
            f"  {size:>9,} people per system: median {figures['median_ms']:.1f} ms, "
            f"p95 {figures['p95_ms']:.1f} ms per request (built in {figures['build_s']:.0f} s); "
            "per system, median: "
            + ", ".join(
                f"{kind} {ms:.1f} ms"
                for kind, ms in zip(result["engines"], figures["system_median_ms"], strict=True)
            )
        )
    if len(sizes) == 2:
        (small, a), (large, b) = sizes.items()
        print(
            f"  growth: x{large / small:.0f} people -> x{b['median_ms'] / a['median_ms']:.2f} "
            f"time per request (an index lookup grows with log N; a scan would grow "
            f"~x{large / small:.0f})"
        )
    last = list(sizes.values())[-1]
    for kind, plans in last["plans"].items():
        for table, plan in plans.items():
            print(f"  plan ({kind}) {table}: {plan}")
