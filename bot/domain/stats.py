"""`/stats [period]`: figures for the operator's accountability, computed from plain rows so the
rules are testable without a database. Their text and chart are drawn in
`bot.telegram.texts.stats` and `bot.telegram.charts`.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.policy import PolicyPack
from bot.domain.consents import Source
from storage.enums import OPEN, CampaignKind
from storage.repositories import Repositories

Month = tuple[int, int]  # (year, month)
DEFAULT_MONTHS = 6
MAX_MONTHS = 36


@dataclass(frozen=True)
class Period:
    start: datetime  # inclusive, aware
    end: datetime  # exclusive, aware
    months: list[Month]


def _month_start(month: Month, zone: ZoneInfo) -> datetime:
    return datetime(month[0], month[1], 1, tzinfo=zone)


def _shift(month: Month, by: int) -> Month:
    index = month[0] * 12 + month[1] - 1 + by
    return index // 12, index % 12 + 1


def month_of(moment: datetime, zone: ZoneInfo) -> Month:
    local = moment.astimezone(zone)
    return local.year, local.month


def parse_period(word: str, now: datetime, zone: ZoneInfo) -> Period | None:
    """'' (the last 6 months), '12m' (the last 12 months, this one included), '2026' (a year)
    or '2026-03' (a month); None for anything else."""
    word = word.strip().lower()
    this = month_of(now, zone)
    if not word:
        first, count = _shift(this, -(DEFAULT_MONTHS - 1)), DEFAULT_MONTHS
    elif match := re.fullmatch(r"(\d{1,2})m", word):
        count = int(match.group(1))
        if not 1 <= count <= MAX_MONTHS:
            return None
        first = _shift(this, -(count - 1))
    elif re.fullmatch(r"\d{4}", word):
        first, count = (int(word), 1), 12
    elif match := re.fullmatch(r"(\d{4})-(\d{2})", word):
        first, count = (int(match.group(1)), int(match.group(2))), 1
        if not 1 <= first[1] <= 12:
            return None
    else:
        return None
    if not 2000 <= first[0] <= 9998:
        return None
    months = [_shift(first, n) for n in range(count)]
    return Period(_month_start(first, zone), _month_start(_shift(first, count), zone), months)


@dataclass(frozen=True)
class ClosedRequest:
    received_at: datetime
    due_at: datetime
    closed_at: datetime


@dataclass(frozen=True)
class LedgerEvent:
    user_id: int
    purpose: str
    granted: bool
    at: datetime


@dataclass
class Stats:
    months: list[Month]
    received: dict[Month, Counter[str]] = field(default_factory=dict)
    closed: int = 0
    on_time: int = 0
    on_time_by_month: dict[Month, float | None] = field(default_factory=dict)
    median_days: float | None = None
    overdue_now: int = 0
    consent_rates: dict[str, dict[Month, float | None]] = field(default_factory=dict)
    campaigns: int = 0
    delivered: int = 0
    unsubscribes: int = 0
    users: int = 0  # users who had joined by the end of the period (or now)

    @property
    def received_total(self) -> int:
        return sum(sum(c.values()) for c in self.received.values())

    @property
    def received_by_type(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for counter in self.received.values():
            total.update(counter)
        return total

    @property
    def on_time_share(self) -> float | None:
        return self.on_time / self.closed if self.closed else None


def requests_by_month(
    received: list[tuple[str, datetime]], months: list[Month], zone: ZoneInfo
) -> dict[Month, Counter[str]]:
    by_month: dict[Month, Counter[str]] = {m: Counter() for m in months}
    for kind, at in received:
        month = month_of(at, zone)
        if month in by_month:
            by_month[month][kind] += 1
    return by_month


def punctuality(
    closed: list[ClosedRequest], months: list[Month], zone: ZoneInfo
) -> tuple[int, int, dict[Month, float | None], float | None]:
    """Closed, on time, the on-time share by month of closing, the median days to close."""
    per_month: dict[Month, list[bool]] = defaultdict(list)
    for request in closed:
        per_month[month_of(request.closed_at, zone)].append(request.closed_at <= request.due_at)
    on_time = sum(r.closed_at <= r.due_at for r in closed)
    shares = {m: (sum(v) / len(v) if (v := per_month.get(m)) else None) for m in months}
    days = [(r.closed_at - r.received_at) / timedelta(days=1) for r in closed]
    return len(closed), on_time, shares, (statistics.median(days) if days else None)


def consent_rates(
    events: list[LedgerEvent],
    joined: list[datetime],
    purposes: list[str],
    months: list[Month],
    zone: ZoneInfo,
) -> dict[str, dict[Month, float | None]]:
    """For each purpose, the share of users who had it on at the end of each month (or now, for
    the current month): the ledger replayed in order up to each month's end."""
    ordered = sorted(events, key=lambda e: e.at)
    joined = sorted(joined)
    state: dict[tuple[int, str], bool] = {}
    rates: dict[str, dict[Month, float | None]] = {p: {} for p in purposes}
    position = users = 0
    for month in months:
        end = _month_start(_shift(month, 1), zone)
        while position < len(ordered) and ordered[position].at < end:
            event = ordered[position]
            state[(event.user_id, event.purpose)] = event.granted
            position += 1
        while users < len(joined) and joined[users] < end:
            users += 1
        for purpose in purposes:
            on = sum(1 for (_, p), granted in state.items() if p == purpose and granted)
            rates[purpose][month] = on / users if users else None
    return rates


async def collect(repo: Repositories, pack: PolicyPack, period: Period, now: datetime) -> Stats:
    zone, months = pack.zone, period.months
    stats = Stats(months)
    received = await repo.stats.received(period.start, period.end)
    stats.received = requests_by_month(received, months, zone)
    closed = [ClosedRequest(*row) for row in await repo.stats.closed(period.start, period.end)]
    stats.closed, stats.on_time, stats.on_time_by_month, stats.median_days = punctuality(
        closed, months, zone
    )
    stats.overdue_now = await repo.stats.overdue(OPEN, now)
    end = min(period.end, now + timedelta(microseconds=1))  # up to now, inclusive
    events = [LedgerEvent(*row) for row in await repo.stats.ledger_until(end)]
    joined = await repo.stats.joined_until(end)
    stats.users = len(joined)
    purposes = [p.id for p in pack.consent_purposes]
    stats.consent_rates = consent_rates(events, joined, purposes, months, zone)
    stats.campaigns, stats.delivered = await repo.stats.campaigns(
        CampaignKind.MARKETING, period.start, period.end
    )
    stats.unsubscribes = await repo.stats.withdrawals(Source.UNSUBSCRIBE, period.start, period.end)
    return stats
