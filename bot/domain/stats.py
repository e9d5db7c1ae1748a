"""`/stats [period]`: figures for the operator's accountability, computed from plain rows so the
rules are testable without a database, and one PNG chart.

The chart is drawn with matplotlib's Agg backend (no display needed). matplotlib is imported
inside `render_chart` only, so the bot starts, and runs when nobody asks for statistics, without
loading it.
"""

from __future__ import annotations

import io
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

from bot.core.i18n import Translator
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


def render_chart(
    stats: Stats, labels: dict[str, str], x_labels: list[str], type_names: dict[str, str]
) -> bytes:
    """Bars of requests received per month (stacked by type) and a line of the on-time share."""
    import matplotlib  # heavy: loaded only when statistics are asked for

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    positions = list(range(len(stats.months)))
    figure, bars = plt.subplots(figsize=(8, 4.5), dpi=100)
    try:
        bottom = [0] * len(stats.months)
        for kind in sorted(stats.received_by_type):
            heights = [stats.received[m][kind] for m in stats.months]
            bars.bar(positions, heights, bottom=bottom, label=type_names.get(kind, kind))
            bottom = [a + b for a, b in zip(bottom, heights, strict=True)]
        bars.set_xticks(positions, x_labels)
        bars.set_ylabel(labels["received"])
        bars.yaxis.get_major_locator().set_params(integer=True)
        share = bars.twinx()
        values = [stats.on_time_by_month.get(m) for m in stats.months]
        share.plot(
            [p for p, v in zip(positions, values, strict=True) if v is not None],
            [v * 100 for v in values if v is not None],
            color="black",
            marker="o",
            label=labels["on_time"],
        )
        share.set_ylim(0, 105)
        share.set_ylabel(labels["on_time"])
        bars.set_title(labels["title"])
        handles, names = bars.get_legend_handles_labels()
        more, more_names = share.get_legend_handles_labels()
        if handles or more:
            bars.legend(handles + more, names + more_names, loc="upper left", fontsize="small")
        figure.tight_layout()
        output = io.BytesIO()
        figure.savefig(output, format="png")
        return output.getvalue()
    finally:
        plt.close(figure)


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


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{round(value * 100)}%"


def month_label(month: Month, t: Translator) -> str:
    return t("stats.month", year=month[0], month=f"{month[1]:02d}")


def stats_text(stats: Stats, period: Period, pack: PolicyPack, t: Translator) -> str:
    """The short text summary sent with the chart."""
    by_type = ", ".join(
        f"{t(f'rights.{kind}')} {count}" for kind, count in stats.received_by_type.most_common()
    )
    lines = [
        t(
            "stats.title",
            first=month_label(period.months[0], t),
            last=month_label(period.months[-1], t),
        ),
        "",
        t("stats.received", count=stats.received_total, by_type=by_type or "—"),
        " · ".join(f"{month_label(m, t)}: {sum(stats.received[m].values())}" for m in stats.months),
        t(
            "stats.closed",
            count=stats.closed,
            share=_percent(stats.on_time_share),
        ),
        t("stats.median", days=round(stats.median_days, 1))
        if stats.median_days is not None
        else t("stats.median_none"),
        t("stats.overdue", count=stats.overdue_now),
        "",
        t("stats.consents", users=stats.users),
    ]
    for purpose_id, rates in stats.consent_rates.items():
        purpose = pack.purpose(purpose_id)
        title = purpose.title.get(t.locale) if purpose else purpose_id
        series = " → ".join(_percent(rates[m]) for m in stats.months)
        lines.append(f"• {escape(title)}: {series}")
    lines += [
        "",
        t("stats.campaigns", count=stats.campaigns, delivered=stats.delivered),
        t("stats.unsubscribes", count=stats.unsubscribes),
    ]
    return "\n".join(lines)


def chart_png(stats: Stats, t: Translator) -> bytes:
    labels = {
        "title": t("stats.chart_title"),
        "received": t("stats.chart_received"),
        "on_time": t("stats.chart_on_time"),
    }
    x_labels = [month_label(m, t) for m in stats.months]
    type_names = {kind: t(f"rights.{kind}") for kind in stats.received_by_type}
    return render_chart(stats, labels, x_labels, type_names)
