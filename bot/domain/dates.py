"""Dates staff type on the desk: the day a legal hold or a restriction lasts until, read in the
operator's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, time

from bot.core.policy import PolicyPack

# A restriction approved with "-": until staff lift it.
UNTIL_LIFTED = datetime(9999, 12, 31, tzinfo=UTC)


def parse_day(word: str, pack: PolicyPack, now: datetime) -> datetime | None:
    """'31.12.2027' or '2027-12-31' -> the end of that day in the operator's zone, if future."""
    for pattern in ("%d.%m.%Y", "%Y-%m-%d"):
        try:
            day = datetime.strptime(word, pattern).date()
        except ValueError:
            continue
        until = datetime.combine(day, time(23, 59, 59), tzinfo=pack.zone)
        return until if until > now else None
    return None


def parse_hold(text: str, pack: PolicyPack, now: datetime) -> tuple[datetime, str] | None:
    """'31.12.2027 reason': a future date, then the reason."""
    head, _, reason = text.strip().partition(" ")
    until = parse_day(head, pack, now)
    if until is None or not reason.strip():
        return None
    return until, reason.strip()


def parse_until(text: str, pack: PolicyPack, now: datetime) -> datetime | None:
    """How long a restriction lasts: '-' (until lifted) or a future day, then anything."""
    return UNTIL_LIFTED if text == "-" else parse_day(text.split()[0], pack, now)
