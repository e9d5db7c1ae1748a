"""The admin group's pace: Telegram lets a bot post about 20 messages a minute in one group and
answers 429 beyond. Every item to staff takes the group's next send slot, kept in `bot_state`
and taken by compare-and-set, so any number of workers and instances on one database together
stay under the limit (a second process never doubles the rate): a slot is free at the stored
time, and taking it stores the time one interval after now. A 429 in the group moves the slot to
when Telegram allows the next message. Items to users are never paced here (campaigns have
their own pace)."""

from __future__ import annotations

from datetime import datetime, timedelta

from storage.repositories import Repositories

SLOT = "staff_next_slot"


class GroupPace:
    """`rate` messages a minute at most (STAFF_RATE; Telegram's limit is about 20): one slot
    every 60/rate seconds, so never more than `rate` in any 60 seconds; 0: not paced."""

    def __init__(self, rate: float) -> None:
        self.interval = timedelta(seconds=60 / rate) if rate > 0 else None
        self._taken: str | None = None  # the slot this worker took last (one item at a time)

    async def free(self, repo: Repositories, now: datetime) -> bool:
        """Whether the group's slot is free now (read only)."""
        if self.interval is None:
            return True
        stored = await repo.state.get(SLOT)
        return stored is None or datetime.fromisoformat(stored) <= now

    async def take(self, repo: Repositories, now: datetime) -> bool:
        """Take the group's slot for one item in the caller's transaction (compare-and-set on
        the stored time); False when it is not free or another worker took it first."""
        if self.interval is None:
            return True
        stored = await repo.state.get(SLOT)
        after = (now + self.interval).isoformat()
        if stored is None:
            taken = await repo.state.put_if_absent(SLOT, after)
        elif datetime.fromisoformat(stored) > now:
            return False
        else:
            taken = await repo.state.replace_if(SLOT, stored, after)
        self._taken = after if taken else None
        return taken

    async def release(self, repo: Repositories) -> None:
        """The slot this worker took was not used: Telegram refused the call (the group cannot
        be reached), so nothing was posted; the next item may go at once (unless another
        worker has taken a later slot since)."""
        if self._taken is not None:
            await repo.state.delete_if(SLOT, self._taken)
            self._taken = None

    async def hold(self, repo: Repositories, until: datetime) -> None:
        """Telegram asked to wait (429 in the group): no item to staff goes out before `until`."""
        if self.interval is None:
            return
        stored = await repo.state.get(SLOT)
        if stored is None or datetime.fromisoformat(stored) < until:
            await repo.state.set(SLOT, until.isoformat())
