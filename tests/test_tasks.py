"""Stopping the background workers."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.tasks import cancel_and_wait


async def test_stopping_workers_waits_for_each_and_expects_their_cancellation() -> None:
    ended: list[str] = []

    async def worker(name: str) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            ended.append(name)

    tasks = [asyncio.create_task(worker(n)) for n in ("outbox", "scheduler")]
    await asyncio.sleep(0)
    await cancel_and_wait(*tasks, None)  # no error: their cancellation is the point
    assert ended == ["outbox", "scheduler"] and all(t.cancelled() for t in tasks)


async def test_a_caller_cancelled_while_it_stops_a_worker_stays_cancelled() -> None:
    """Shutdown cancelled half-way (a second Ctrl+C, a supervisor's timeout) ends shutdown
    too: the caller's own cancellation is not swallowed as if it were the worker's."""
    cleaning = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cleaning.set()
            await asyncio.sleep(3600)  # still cleaning up when the caller is cancelled
            raise

    worker = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    stopping = asyncio.create_task(cancel_and_wait(worker))
    await cleaning.wait()
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert worker.cancelled()
