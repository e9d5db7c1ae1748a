"""The /stats summary: the figures of a period as the short text sent with the chart."""

from __future__ import annotations

from html import escape

from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from bot.domain.stats import Month, Period, Stats


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
