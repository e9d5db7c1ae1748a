"""Stopping the background workers (outbox, scheduler, campaigns)."""

from __future__ import annotations

import asyncio


async def cancel_and_wait(*tasks: asyncio.Task[None] | None) -> None:
    """Cancel the tasks and wait until each has ended. Their own cancellation is expected and
    not raised; a cancellation of the caller while it waits is passed on, not swallowed."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    for task in running:
        try:
            await task
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if caller is not None and caller.cancelling():
                raise
