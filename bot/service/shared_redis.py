"""Redis, when `REDIS_URL` is set: one user's updates are serialised across instances, and
every instance learns when the admin group's membership changed. Imported only then (the
client's import costs start-up time an instance without Redis has no use for)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import RedisEventIsolation
from redis.asyncio import Redis
from redis.exceptions import LockNotOwnedError

log = logging.getLogger(__name__)


class LeasedIsolation(RedisEventIsolation):
    """aiogram's Redis isolation with a lease: a lock held longer than `lease` seconds (a hung
    instance) expires so the user is not locked out for ever. An update that outlasted its
    lease is still answered; its late release is logged, not raised."""

    def __init__(self, redis: Redis, lease: int) -> None:
        super().__init__(redis, lock_kwargs={"timeout": lease})
        self._lease = lease

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncIterator[None]:
        try:
            async with super().lock(key):
                yield
        except LockNotOwnedError:  # raised on release, after the update was handled
            log.warning("An update outlasted its isolation lease (%s s)", self._lease)


def connect(url: str, lease: int) -> tuple[Redis, LeasedIsolation]:
    redis = Redis.from_url(url)
    return redis, LeasedIsolation(redis, lease)
