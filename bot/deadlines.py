"""Answer deadlines: N calendar days or N working days in the operator's country."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from bot.policy import DayKind, Deadline


@lru_cache(maxsize=32)
def _holidays(country: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, years=year).keys())


def is_working_day(day: date, country: str) -> bool:
    return day.weekday() < 5 and day not in _holidays(country, day.year)


def due_date(received: date, deadline: Deadline, country: str) -> date:
    """The last day on which the answer is on time.

    Counting starts the day after receipt (the day of receipt is not counted). Calendar days
    count every day; working days skip weekends and the country's public holidays.
    """
    if deadline.kind is DayKind.CALENDAR:
        return received + timedelta(days=deadline.days)
    day, left = received, deadline.days
    while left:
        day += timedelta(days=1)
        if is_working_day(day, country):
            left -= 1
    return day


def due_at(received_at: datetime, deadline: Deadline, country: str, zone: ZoneInfo) -> datetime:
    """The due moment: the end of the due day in the operator's time zone, as an aware datetime."""
    local_day = received_at.astimezone(zone).date()
    last_day = due_date(local_day, deadline, country)
    return datetime.combine(last_day, time(23, 59, 59), tzinfo=zone)
