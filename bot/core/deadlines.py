"""Answer deadlines: N calendar days, N working days in the operator's country, or N hours.

Working days come from the `holidays` package's data for the country: weekends and public
holidays are days off, and where the government moves a working day (Belarus: a Saturday
declared a working day in exchange for a weekday off next to a holiday) the Saturday counts as a
working day and the swapped weekday does not.
"""

from __future__ import annotations

import calendar
import importlib.util
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.core.policy import DayKind, Deadline

if TYPE_CHECKING:
    from holidays import HolidayBase


@lru_cache(maxsize=8)
def _country_calendar(country: str) -> type[HolidayBase]:
    """The calendar class of one country, loaded on first use and alone: the package's
    `country_holidays` imports the modules of all ~300 countries (0.3 s of start-up)."""
    import holidays
    from holidays.registry import COUNTRIES

    for module, (class_name, *codes) in COUNTRIES.items():
        if country in codes:
            path = Path(holidays.__file__).parent / "countries" / f"{module}.py"
            spec = importlib.util.spec_from_file_location(f"holidays.countries.{module}", path)
            if spec is None or spec.loader is None:
                break
            loaded = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(loaded)
            return getattr(loaded, class_name)  # type: ignore[no-any-return]
    return type(holidays.country_holidays(country))


@lru_cache(maxsize=32)
def _calendar(country: str, year: int) -> HolidayBase:
    return _country_calendar(country)(years=year)


def is_working_day(day: date, country: str) -> bool:
    """A working day in `country`: not a weekend or holiday, or a weekend declared working."""
    return bool(_calendar(country, day.year).is_working_day(day))


def due_date(received: date, deadline: Deadline, country: str) -> date:
    """The last day on which the answer is on time.

    Counting starts the day after receipt (the day of receipt is not counted). Calendar days
    count every day; working days skip days off, and count weekends declared working.
    """
    if deadline.kind is DayKind.CALENDAR:
        day = received + timedelta(days=deadline.days)
        if deadline.at_most_months:
            cap = add_months(datetime.combine(received, time()), deadline.at_most_months)
            day = min(day, cap.date())
        return day
    day, left = received, deadline.days
    while left:
        day += timedelta(days=1)
        if is_working_day(day, country):
            left -= 1
    return day


def end_of_day(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=zone)


def due_at(received_at: datetime, deadline: Deadline, country: str, zone: ZoneInfo) -> datetime:
    """The due moment: the end of the due day in the operator's time zone, as an aware datetime.
    An hours deadline (GDPR art. 33: 72 hours) runs from the moment itself."""
    if deadline.kind is DayKind.HOURS:
        return received_at + timedelta(hours=deadline.days)
    local_day = received_at.astimezone(zone).date()
    return end_of_day(due_date(local_day, deadline, country), zone)


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` later; the month's last day where that day does not exist
    (31 January + 1 month = 28 or 29 February)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return moment.replace(year=year, month=month, day=min(moment.day, last))
