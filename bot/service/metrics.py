"""Health and Prometheus metrics of one instance (served in webhook mode, see bot.service.web).

Counters and the latency histogram are this process's own; the gauges (outbox backlog, failed
deliveries, open and overdue requests, campaign progress) are read from the database at each
scrape, so every instance reports the shared state."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import Clock
from bot.domain.staff_reach import Unreachable, current
from storage.enums import OPEN
from storage.repositories import HealthRepository, Repositories

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
PREFIX = "privacy_desk"


@dataclass(frozen=True)
class Health:
    ok: bool
    reason: str


class Metrics:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        outbox_stuck_after: timedelta,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._stuck_after = outbox_stuck_after
        self.registry = CollectorRegistry()
        r = self.registry
        self.updates = Counter(
            f"{PREFIX}_updates", "Updates handled, by type", ["type"], registry=r
        )
        self.latency = Histogram(
            f"{PREFIX}_update_seconds", "Time to handle one update, by type", ["type"], registry=r
        )
        self.backlog = Gauge(f"{PREFIX}_outbox_backlog", "Outbox items waiting", registry=r)
        self.oldest = Gauge(
            f"{PREFIX}_outbox_oldest_seconds", "Age of the oldest waiting outbox item", registry=r
        )
        self.failed = Gauge(
            f"{PREFIX}_failed_deliveries",
            "Messages that could not be delivered, by source (outbox, campaign)",
            ["source"],
            registry=r,
        )
        self.open = Gauge(f"{PREFIX}_requests_open", "Open requests", registry=r)
        self.overdue = Gauge(f"{PREFIX}_requests_overdue", "Open requests past due", registry=r)
        self.unreachable = Gauge(
            f"{PREFIX}_staff_unreachable",
            "1 while the admin group cannot be reached (/healthz says why), else 0",
            registry=r,
        )
        self.unreachable_for = Gauge(
            f"{PREFIX}_staff_unreachable_seconds",
            "For how long the admin group has not been reachable (0: it is)",
            registry=r,
        )
        self.campaign = Gauge(
            f"{PREFIX}_campaign_deliveries",
            "Deliveries of campaigns being sent, by campaign and status",
            ["campaign", "status"],
            registry=r,
        )

    def middleware(self) -> BaseMiddleware:
        return _Measure(self)

    async def health(self) -> Health:
        """Healthy when the database answers, the admin group can be reached and no staff
        message waits longer than allowed."""
        try:
            async with self._sessions() as session:
                stats = HealthRepository(session)
                await stats.ping()
                oldest = await stats.oldest_pending_staff_item()
                lost = await current(Repositories(session))
        except Exception as error:  # any failure to reach the database is the answer
            return Health(False, f"database unreachable ({type(error).__name__})")
        if lost is not None:
            since = lost.since.isoformat(timespec="seconds")
            away = int(self._seconds_since(lost))
            return Health(False, f"staff unreachable since {since} ({away} s): {lost.reason}")
        if oldest is not None:
            age = self._clock.now() - oldest
            if age > self._stuck_after:
                return Health(
                    False, f"outbox stuck: oldest staff item {int(age.total_seconds())} s old"
                )
        return Health(True, "ok")

    async def render(self) -> bytes:
        now = self._clock.now()
        async with self._sessions() as session:
            snapshot = await HealthRepository(session).snapshot(now, OPEN)
            lost = await current(Repositories(session))
        self.unreachable.set(0 if lost is None else 1)
        self.unreachable_for.set(0 if lost is None else self._seconds_since(lost))
        self.backlog.set(snapshot.outbox_backlog)
        oldest = snapshot.outbox_oldest
        self.oldest.set(0 if oldest is None else max((now - oldest).total_seconds(), 0))
        self.failed.labels("outbox").set(snapshot.failed_outbox)
        self.failed.labels("campaign").set(snapshot.failed_deliveries)
        self.open.set(snapshot.open_requests)
        self.overdue.set(snapshot.overdue_requests)
        self.campaign.clear()
        for (campaign_id, status), count in snapshot.campaigns.items():
            self.campaign.labels(str(campaign_id), status).set(count)
        return generate_latest(self.registry)

    def _seconds_since(self, lost: Unreachable) -> float:
        return max((self._clock.now() - lost.since).total_seconds(), 0.0)


class _Measure(BaseMiddleware):
    """Counts every update by type and times its handling (outermost middleware)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        kind = event.event_type if isinstance(event, Update) else type(event).__name__
        started = time.perf_counter()
        try:
            return await handler(event, data)
        finally:
            self._metrics.updates.labels(kind).inc()
            self._metrics.latency.labels(kind).observe(time.perf_counter() - started)
