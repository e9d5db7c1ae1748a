from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.core.clock import FrozenClock
from bot.core.packs import PACKS_DIR
from tests import engines
from tests.fake_telegram import FakeTelegram
from tests.kit import Harness


def pytest_sessionstart(session: pytest.Session) -> None:
    """A configured server that cannot be reached (or a database another run is using) fails
    the run: it is never skipped."""
    if problems := engines.check_servers():
        pytest.exit("Test servers unusable: " + "; ".join(problems), returncode=3)


def pytest_report_header() -> list[str]:
    database = "PostgreSQL (TEST_DATABASE_URL)" if engines.ON_POSTGRESQL else "SQLite"
    redis = "Redis (TEST_REDIS_URL)" if engines.TEST_REDIS_URL else "no Redis"
    return [f"database engine: {database}; {redis}"]


@pytest.fixture(autouse=True)
def fresh_servers() -> None:
    """Each test starts on an empty PostgreSQL schema and Redis database, when configured."""
    if engines.ON_POSTGRESQL or engines.TEST_REDIS_URL:
        engines.reset_servers()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def bot(fake: FakeTelegram, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Harness]:
    harness = Harness(fake, tmp_path, clock=clock)
    await harness.start()
    yield harness
    await harness.stop()


@pytest.fixture
async def sqlite_bot(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[Harness]:
    """The bot on an SQLite file whatever the suite's engine (backups, in-place upgrades)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    harness = Harness(fake, tmp_path, clock=clock, database_url=url)
    await harness.start()
    yield harness
    await harness.stop()


def gdpr_only_pack(tmp_path: Path) -> Path:
    """The hosting pack under the GDPR alone: the GDPR's own mechanics (one month, the paused
    clock, the extension, 72 hours) on a pack no other law shortens. The shipped hosting pack
    is also under Law 99-Z (`hosting_bot`)."""
    source = (PACKS_DIR / "gdpr_hosting.toml").read_text("utf-8")
    for old, new in (
        ('laws = ["by_99z", "gdpr"]', 'laws = ["gdpr"]'),
        ("marriage_lowers = true", "marriage_lowers = false"),
        ('rights = ["access", "disclosures", ', 'rights = ["access", '),  # 99-Z art. 12
    ):
        assert old in source
        source = source.replace(old, new)
    path = tmp_path / "gdpr_only.toml"
    path.write_text(source, "utf-8")
    return path


@pytest.fixture
async def gdpr_bot(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[Harness]:
    harness = Harness(fake, tmp_path, pack=str(gdpr_only_pack(tmp_path)), clock=clock)
    await harness.start()
    yield harness
    await harness.stop()


@pytest.fixture
async def hosting_bot(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[Harness]:
    """The shipped hosting pack: a Belarusian operator under Law 99-Z and the GDPR."""
    harness = Harness(fake, tmp_path, pack="gdpr_hosting", clock=clock)
    await harness.start()
    yield harness
    await harness.stop()
