"""The updates benchmark: one user journey through three dispatchers (A bare aiogram, B A plus
a session and commit per update, C the bot), interleaved round by round, with what C does to
the database counted per update (see the package docstring)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import statistics
import tempfile
import time
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
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from bot.service.warmup import keep_response_models
from bot.telegram.middlewares import MAX_CONCURRENT_UPDATES
from tests.bench.common import Feed, Rider, feeder
from tests.fake_telegram import TOKEN, FakeTelegram
from tests.kit import Harness

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


async def ride(rider: Rider, feed: Feed) -> None:
    for kind, what in JOURNEY:
        start = len(rider.fake.events)
        update = rider.message_update(what) if kind == "send" else rider.tap_update(what)
        await feed(update)
        rider.saw(start)


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
