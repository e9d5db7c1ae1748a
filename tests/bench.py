"""Benchmarks (not tests): `python -m tests.bench [updates|campaign|growth|startup|all]`.

updates  (default) The same 5-update user journey (/start, age gate, /consents, a consent's
         terms, "I agree": 10 Bot API calls) through three dispatchers against the fake Bot API
         server, interleaved round by round so a noisy machine hits all three alike:
           A  a bare aiogram dispatcher whose trivial handlers make the same Bot API calls
              (same texts and keyboards, replayed from a recording of the bot);
           B  A plus one SQLAlchemy async session per update that reads the sender's row
              before the handler and upserts it after, then commits (stock SQLAlchemy aiosqlite
              engine, SQLite WAL, at most MAX_CONCURRENT_UPDATES in flight like the bot);
           C  the bot itself (production wiring, SQLite file).
         Prints updates/s (best and median over the rounds), the process CPU time per update
         (all threads; less sensitive to the other load on the machine), the ratios C/A and
         C/B, and per update of C: SQL statements, commits, pool checkouts and aiosqlite
         thread round trips.
campaign Campaign delivery: paced at BROADCAST_RATE=25, and uncapped (deliveries/s), and the
         resident memory of a campaign to `--recipients` users.
growth   A synthetic database (1,000,000 users, 10,000,000 consent events by default, built
         with bulk SQL): /consents p95, an export of a user with 10,000 events, an erasure and
         the longest time it holds the database.
startup  Start-up to the first getUpdates, the bot against a bare aiogram bot (subprocesses).

Options: --users N --rounds R --concurrency C --recipients N --growth-users N --events N.
Numbers depend on the machine; ratios measured in one run are what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite
from aiogram import Bot, Dispatcher, F
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, Update
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from bot.domain.audiences import recipients
from bot.domain.export import build_export, export_bytes
from bot.service.warmup import keep_response_models
from bot.telegram.middlewares import MAX_CONCURRENT_UPDATES
from storage.db import checkpoint
from storage.repositories import Repositories
from tests.fake_telegram import TOKEN, FakeTelegram
from tests.kit import ADMIN_CHAT_ID, DATA_KEY, PSEUDONYM_SECRET, Harness

JOURNEY: list[tuple[str, str]] = [
    ("send", "/start"),
    ("tap", "16 or older"),
    ("send", "/consents"),
    ("tap", "⬜ Marketing messages"),
    ("tap", "✅ I agree"),
]
UPDATES_PER_USER = len(JOURNEY)


# --- counting what the database layer does -------------------------------------------------


@dataclass
class Counters:
    statements: int = 0
    commits: int = 0
    checkouts: int = 0
    round_trips: int = 0

    def minus(self, other: Counters) -> Counters:
        return Counters(
            self.statements - other.statements,
            self.commits - other.commits,
            self.checkouts - other.checkouts,
            self.round_trips - other.round_trips,
        )

    def copy(self) -> Counters:
        return Counters(self.statements, self.commits, self.checkouts, self.round_trips)


COUNT = Counters()
_original_execute = aiosqlite.Connection._execute
_original_commit = aiosqlite.Connection.commit


async def _counted_execute(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
    COUNT.round_trips += 1
    return await _original_execute(self, fn, *args, **kwargs)


async def _counted_commit(self: aiosqlite.Connection) -> None:
    COUNT.commits += 1  # a COMMIT that reached SQLite, not one the driver skipped
    await _original_commit(self)


def count_database(engine: AsyncEngine) -> None:
    """Count the statements and pool checkouts of `engine` (commits and round trips are
    counted on aiosqlite itself, for every engine)."""
    sync: Engine = engine.sync_engine

    def statement(*_: Any) -> None:
        COUNT.statements += 1

    def checkout(*_: Any) -> None:
        COUNT.checkouts += 1

    event.listen(sync, "before_cursor_execute", statement)
    event.listen(sync.pool, "checkout", checkout)


aiosqlite.Connection._execute = _counted_execute  # type: ignore[method-assign]
aiosqlite.Connection.commit = _counted_commit  # type: ignore[method-assign]


# --- a person driving any of the three dispatchers -----------------------------------------


@dataclass
class Rider:
    """One user: builds updates like a Telegram client and taps buttons of the last replies."""

    fake: FakeTelegram
    id: int
    screens: dict[int, dict[str, Any]] = field(default_factory=dict)  # message id -> markup

    def user(self) -> dict[str, Any]:
        return {"id": self.id, "is_bot": False, "first_name": "Bench", "language_code": "en"}

    def chat(self) -> dict[str, Any]:
        return {"id": self.id, "type": "private", "first_name": "Bench"}

    def message_update(self, command: str) -> dict[str, Any]:
        message = {
            "message_id": self.fake.next_message_id(self.id),
            "date": int(time.time()),
            "chat": self.chat(),
            "from": self.user(),
            "text": command,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}],
        }
        return {"update_id": self.fake.new_update_id(), "message": message}

    def tap_update(self, label: str) -> dict[str, Any]:
        for message_id in sorted(self.screens, reverse=True):
            for row in self.screens[message_id].get("inline_keyboard", []):
                for button in row:
                    if button["text"] == label:
                        message = self.fake.messages[(self.id, message_id)]
                        query = {
                            "id": self.fake.new_callback_id(),
                            "from": self.user(),
                            "chat_instance": str(self.id),
                            "message": message,
                            "data": button["callback_data"],
                        }
                        return {"update_id": self.fake.new_update_id(), "callback_query": query}
        raise AssertionError(f"no button {label!r} for user {self.id}")

    def saw(self, start: int) -> None:
        for event_ in self.fake.events[start:]:
            if event_.chat_id == self.id and event_.markup and event_.message_id is not None:
                self.screens[event_.message_id] = event_.markup


Feed = Callable[[dict[str, Any]], Awaitable[None]]


async def ride(rider: Rider, feed: Feed) -> None:
    for kind, what in JOURNEY:
        start = len(rider.fake.events)
        update = rider.message_update(what) if kind == "send" else rider.tap_update(what)
        await feed(update)
        rider.saw(start)


def feeder(dispatcher: Dispatcher, bot: Bot) -> Feed:
    async def feed(raw: dict[str, Any]) -> None:
        update = Update.model_validate(raw, context={"bot": bot})
        await dispatcher.feed_update(bot, update)

    return feed


# --- A and B: a bare aiogram bot replaying the bot's calls ---------------------------------


@dataclass
class Call:
    method: str  # "send", "edit", "answer"
    text: str
    markup: InlineKeyboardMarkup | None


def recorded_calls(fake: FakeTelegram, start: int) -> list[Call]:
    """The Bot API calls the real bot made since event `start`."""
    calls = []
    for event_ in fake.events[start:]:
        markup = event_.raw.get("reply_markup")
        parsed = InlineKeyboardMarkup.model_validate(markup) if markup else None
        kind = {"message": "send", "edit": "edit", "answer": "answer"}[event_.kind]
        calls.append(Call(kind, str(event_.raw.get("text", "")), parsed))
    return calls


def bare_dispatcher(per_step: list[list[Call]], step_of: dict[str, int]) -> Dispatcher:
    """Trivial handlers making the recorded calls of each step; no database, default FSM."""
    dispatcher = Dispatcher()

    async def perform(bot: Bot, chat_id: int, step: int, query: CallbackQuery | None) -> None:
        for call in per_step[step]:
            if call.method == "answer" and query is not None:
                await query.answer()
            elif call.method == "edit" and query is not None and isinstance(query.message, Message):
                await query.message.edit_text(call.text, reply_markup=call.markup)
            elif call.method == "send":
                await bot.send_message(chat_id, call.text, reply_markup=call.markup)

    async def on_start(message: Message, bot: Bot) -> None:
        await perform(bot, message.chat.id, 0, None)

    async def on_consents(message: Message, bot: Bot) -> None:
        await perform(bot, message.chat.id, 2, None)

    async def on_button(query: CallbackQuery, bot: Bot) -> None:
        await perform(bot, query.from_user.id, step_of[query.data or ""], query)

    dispatcher.message.register(on_start, Command("start"))
    dispatcher.message.register(on_consents, Command("consents"))
    dispatcher.callback_query.register(on_button, F.data.in_(set(step_of)))
    return dispatcher


def bare_bot(fake: FakeTelegram) -> Bot:
    keep_response_models()
    session = AiohttpSession(api=TelegramAPIServer.from_base(fake.url))
    return Bot(
        TOKEN,
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


def sqlite_wal_engine(path: Path) -> AsyncEngine:
    """A stock SQLAlchemy aiosqlite engine with the same WAL/synchronous settings as the bot."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")

    def pragmas(connection: Any, _: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    event.listen(engine.sync_engine, "connect", pragmas)
    return engine


READ_USER = text("SELECT id, updates FROM seen WHERE id = :id")
UPSERT = text(
    "INSERT INTO seen (id, updates) VALUES (:id, 1) "
    "ON CONFLICT (id) DO UPDATE SET updates = updates + 1"
)


def with_session_per_update(dispatcher: Dispatcher, engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    slots = asyncio.Semaphore(MAX_CONCURRENT_UPDATES)  # the same bound as the bot's

    async def middleware(handler: Any, update: Any, data: dict[str, Any]) -> Any:
        user = data.get("event_from_user")
        key = {"id": user.id if user else 0}
        async with slots, sessions() as session:
            (await session.execute(READ_USER, key)).first()
            result = await handler(update, data)
            await session.execute(UPSERT, key)
            await session.commit()
            return result

    dispatcher.update.outer_middleware(middleware)


# --- the three-way run ---------------------------------------------------------------------


@dataclass
class Config:
    name: str
    feed: Feed
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # process CPU seconds (all threads) per round
    counts: Counters = field(default_factory=Counters)
    updates: int = 0


async def run_round(config: Config, fake: FakeTelegram, riders: list[Rider], width: int) -> None:
    gate = asyncio.Semaphore(width)

    async def one(rider: Rider) -> None:
        async with gate:
            await ride(rider, config.feed)

    gc.collect()
    before = COUNT.copy()
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(r) for r in riders))
    config.times.append(time.perf_counter() - started)
    config.cpu.append(time.process_time() - cpu)
    config.counts = _add(config.counts, COUNT.minus(before))
    config.updates += len(riders) * UPDATES_PER_USER


def _add(a: Counters, b: Counters) -> Counters:
    return Counters(
        a.statements + b.statements,
        a.commits + b.commits,
        a.checkouts + b.checkouts,
        a.round_trips + b.round_trips,
    )


async def bench_updates(users: int, rounds: int, width: int) -> dict[str, Any]:
    logging.disable(logging.CRITICAL)
    fake = FakeTelegram()
    await fake.start()
    ids = iter(range(7_000_000, 8_000_000))

    def riders(n: int) -> list[Rider]:
        people = []
        for _ in range(n):
            rider = Rider(fake, next(ids))
            fake.add_private_chat(rider.user())
            people.append(rider)
        return people

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        harness = Harness(fake, Path(folder))
        await harness.start()
        app = harness.app
        count_database(app.engine)
        bot_feed = feeder(app.dispatcher, app.bot)

        # Record what the bot says on one journey; A and B replay exactly that.
        probe = riders(1)[0]
        step_of: dict[str, int] = {}
        per_step: list[list[Call]] = []
        for step, (kind, what) in enumerate(JOURNEY):
            mark = len(fake.events)
            update = probe.message_update(what) if kind == "send" else probe.tap_update(what)
            if kind == "tap":
                step_of[update["callback_query"]["data"]] = step
            await bot_feed(update)
            probe.saw(mark)
            per_step.append(recorded_calls(fake, mark))
        assert sum(map(len, per_step)) == 10, per_step

        bare = bare_bot(fake)
        dispatcher_a = bare_dispatcher(per_step, step_of)
        dispatcher_b = bare_dispatcher(per_step, step_of)
        engine_b = sqlite_wal_engine(Path(folder) / "b.db")
        async with engine_b.begin() as connection:
            await connection.execute(
                text("CREATE TABLE seen (id INTEGER PRIMARY KEY, updates INT)")
            )
        with_session_per_update(dispatcher_b, engine_b)
        configs = [
            Config("A", feeder(dispatcher_a, bare)),
            Config("B", feeder(dispatcher_b, bare)),
            Config("C", bot_feed),
        ]
        for warm in configs:  # warm caches, pools and code paths; not measured
            await run_round(Config(warm.name, warm.feed), fake, riders(20), width)
        for round_ in range(rounds):
            order = configs[round_ % 3 :] + configs[: round_ % 3]
            for config in order:
                await run_round(config, fake, riders(users), width)
        await harness.stop()
        await bare.session.close()
        await engine_b.dispose()
    await fake.stop()

    per_update = users * UPDATES_PER_USER
    result: dict[str, Any] = {"users": users, "rounds": rounds, "concurrency": width}
    for config in configs:
        rates = sorted(per_update / t for t in config.times)
        cpu_ms = [1000 * c / per_update for c in config.cpu]
        result[config.name] = {
            "best": rates[-1],
            "median": statistics.median(rates),
            "cpu_ms": statistics.median(cpu_ms),
        }
    c = configs[2]
    result["C_per_update"] = {
        "statements": c.counts.statements / max(c.updates, 1),
        "commits": c.counts.commits / max(c.updates, 1),
        "checkouts": c.counts.checkouts / max(c.updates, 1),
        "round_trips": c.counts.round_trips / max(c.updates, 1),
    }
    return result


def print_updates(result: dict[str, Any]) -> None:
    print(
        f"updates benchmark: {result['users']} users x {UPDATES_PER_USER} updates per round, "
        f"{result['rounds']} rounds interleaved, concurrency {result['concurrency']}"
    )
    print("| config | best updates/s | median updates/s | CPU ms per update (median) |")
    print("|---|---|---|---|")
    for name, label in (("A", "A bare aiogram"), ("B", "B A + session/commit"), ("C", "C the bot")):
        row = result[name]
        print(f"| {label} | {row['best']:.0f} | {row['median']:.0f} | {row['cpu_ms']:.1f} |")
    for other in ("A", "B"):
        best = result["C"]["best"] / result[other]["best"]
        median = result["C"]["median"] / result[other]["median"]
        cpu = result[other]["cpu_ms"] / result["C"]["cpu_ms"]
        print(f"| C/{other} | {best:.2f} | {median:.2f} | {cpu:.2f} |")
    per = result["C_per_update"]
    print(
        f"C per update: {per['statements']:.2f} statements, {per['commits']:.2f} commits, "
        f"{per['checkouts']:.2f} pool checkouts, {per['round_trips']:.2f} aiosqlite round trips"
    )


# --- synthetic data, built with bulk SQL inside SQLite ----------------------------------------

FIRST_ID = 10_000_000


async def fill(harness: Harness, users: int, events: int, *, heavy_events: int = 0) -> None:
    """`users` onboarded adults (age answered, notice seen) holding the marketing consent, and
    `events` consent events over them (alternating grants and withdrawals, ending granted);
    the first user gets `heavy_events` of them. Everything is generated by recursive CTEs."""
    pack = harness.pack
    assert pack.marketing is not None
    purpose, version = pack.marketing.purpose, pack.policy.version
    rest = max(events - heavy_events, users)
    per_user = max(1, rest // users)
    statements = [
        f"""INSERT INTO consent_texts (id, purpose, locale, policy_version, body)
            VALUES ('bench', '{purpose}', 'en', '{version}', 'bench') ON CONFLICT DO NOTHING""",
        f"""WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq
                                      WHERE n < {users - 1})
            INSERT INTO users (id, language, age_group, age_answered_at, notice_version,
                               notice_shown_at, blocked_bot, created_at)
            SELECT {FIRST_ID} + n, 'en', 'adult', '2026-01-01 00:00:00', '{version}',
                   '2026-01-01 00:00:00', 0, '2026-01-01 00:00:00' FROM seq""",
        f"""WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq
                                      WHERE n < {users * per_user - 1})
            INSERT INTO consent_events (user_id, purpose, granted, at, policy_version, source,
                                        actor_id, text_id)
            SELECT {FIRST_ID} + n / {per_user}, '{purpose}',
                   (n % {per_user}) % 2 = ({per_user} - 1) % 2,
                   datetime('2026-01-01', '+' || (n % {per_user}) || ' minutes'),
                   '{version}', 'toggle', {FIRST_ID} + n / {per_user}, 'bench' FROM seq""",
    ]
    if heavy_events:
        statements.append(
            f"""WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq
                                          WHERE n < {heavy_events - 1})
                INSERT INTO consent_events (user_id, purpose, granted, at, policy_version,
                                            source, actor_id, text_id)
                SELECT {FIRST_ID}, '{purpose}', n % 2 = 0,
                       datetime('2026-02-01', '+' || n || ' minutes'), '{version}', 'toggle',
                       {FIRST_ID}, 'bench' FROM seq"""
        )
    statements.append(
        f"""INSERT INTO consent_states (user_id, purpose, granted, policy_version, event_id,
                                        updated_at)
            SELECT user_id, purpose, 1, '{version}', MAX(id), '2026-01-01 00:00:00'
            FROM consent_events WHERE user_id >= {FIRST_ID} GROUP BY user_id, purpose"""
    )
    async with harness.app.engine.begin() as connection:
        for statement in statements:
            await connection.exec_driver_sql(statement)
    await checkpoint(harness.app.engine)


class CountingTelegram(FakeTelegram):
    """The fake Bot API that keeps no messages of the recipients (a million of them)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_at: list[float] = []

    def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        if chat_id < FIRST_ID:
            return super()._m_sendMessage(params)
        self.sent_at.append(time.perf_counter())
        chat = {"id": chat_id, "type": "private", "first_name": "B"}
        return {"message_id": len(self.sent_at), "date": 0, "chat": chat, "text": "x"}


async def queue_campaign(harness: Harness) -> None:
    """A marketing campaign to every holder, queued and started in the database; the bot
    process started next resumes it, as after a restart."""
    app = harness.app
    now = app.clock.now()
    async with app.sessions() as session:
        repo = Repositories(session)
        campaign = await repo.campaigns.create(kind="marketing", body="Sale", created_by=1, now=now)
        audience = recipients(repo, app.pack, "marketing")
        await repo.campaigns.start(campaign.id, audience, now=now, progress_message_id=0)
        await repo.commit()


def child_env(fake: FakeTelegram, database_url: str | None = None) -> dict[str, str]:
    """The environment of a benchmark child: `python -m bot`'s settings when `database_url`."""
    keep = {"PATH", "HOME", "LANG", "PYTHONHASHSEED"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env |= {
        "PYTHONPATH": str(Path(__file__).parent.parent),
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": fake.url,
        "BENCH_CHAT_ID": str(FIRST_ID),
        "LOG_LEVEL": "ERROR",
    }
    if database_url is not None:
        env |= {
            "ADMIN_CHAT_ID": str(ADMIN_CHAT_ID),
            "PSEUDONYM_SECRET": PSEUDONYM_SECRET,
            "DATA_KEY": DATA_KEY,
            "DATABASE_URL": database_url,
            "POLICY_PACK": "by_99z_sports",  # the Harness's default
        }
    return env


async def run_child(args: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """`python -m tests.bench_child ARGS` in its own process; its last output line (JSON)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.bench_child",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"bench child {args} failed: {err.decode()[-2000:]}")
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


def delivery_rate(fake: CountingTelegram) -> float:
    sent = len(fake.sent_at)
    return (sent - 1) / (fake.sent_at[-1] - fake.sent_at[0]) if sent > 1 else 0.0


async def bench_campaigns(recipients_n: int) -> dict[str, Any]:
    """The sender (the bot's campaign runner, or the bare loop) runs in a process of its own,
    the fake Bot API in this one: neither's CPU nor memory is counted to the other."""
    logging.disable(logging.CRITICAL)
    result: dict[str, Any] = {}
    fake = CountingTelegram()
    await fake.start()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        # The ceiling on this machine: the same Bot API call, 32 at a time, no database at all.
        fake.sent_at.clear()
        child = await run_child(["bare-sender", "5000"], child_env(fake), Path(folder))
        result["bare_send_loop"] = {
            "recipients": 5000,
            "sent": len(fake.sent_at),
            "per_second": delivery_rate(fake),
            **child,
        }
    for label, users, rate, budget in (
        ("paced_25", 250, 25.0, 3600.0),
        ("uncapped", 20_000, math.inf, 3600.0),
        ("million", recipients_n, math.inf, 20.0),
    ):
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
            harness = Harness(fake, Path(folder))
            await harness.start()
            await fill(harness, users, users)
            await queue_campaign(harness)
            await harness.stop()
            fake.sent_at.clear()
            env = child_env(fake, harness.settings.database_url)
            child = await run_child(["sender", str(rate), str(budget)], env, Path(folder))
            result[label] = {
                "recipients": users,
                "sent": len(fake.sent_at),
                "per_second": delivery_rate(fake),
                **child,
            }
    await fake.stop()
    return result


def print_campaigns(result: dict[str, Any]) -> None:
    print("campaign benchmark (the sender in its own process, the fake Bot API in this one):")
    for label, row in result.items():
        after_start = row.get("rss_after_start_mb")
        start = f"{after_start:.0f} MB after start-up, " if after_start is not None else ""
        print(
            f"  {label}: {row['sent']} of {row['recipients']} sent, "
            f"{row['per_second']:.1f} deliveries/s; sender RSS {start}"
            f"{row['rss_mb']:.0f} MB at the end, peak {row['peak_mb']:.0f} MB"
        )


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


# --- entry point ---------------------------------------------------------------------------


# --- start-up ---------------------------------------------------------------------------------


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
            bare = ["-m", "tests.bench_child", "bare-bot"]
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench")
    parser.add_argument(
        "what",
        nargs="?",
        default="updates",
        choices=["updates", "campaign", "growth", "startup", "all"],
    )
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--growth-users", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument(
        "--profile", action="store_true", help="profile the run (cProfile), print the top 40"
    )
    args = parser.parse_args(argv)
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            run(args)
        finally:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    if args.what in ("updates", "all"):
        print_updates(asyncio.run(bench_updates(args.users, args.rounds, args.concurrency)))
    if args.what in ("campaign", "all"):
        print_campaigns(asyncio.run(bench_campaigns(args.recipients)))
    if args.what in ("growth", "all"):
        print_growth(asyncio.run(bench_growth(args.growth_users, args.events)))
    if args.what in ("startup", "all"):
        print_startup(asyncio.run(bench_startup(args.rounds)))


if __name__ == "__main__":
    main(sys.argv[1:])
