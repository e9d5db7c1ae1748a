from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import FrozenClock
from tests.fake_telegram import FakeTelegram
from tests.kit import Harness


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
async def gdpr_bot(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[Harness]:
    harness = Harness(fake, tmp_path, pack="gdpr_hosting", clock=clock)
    await harness.start()
    yield harness
    await harness.stop()
