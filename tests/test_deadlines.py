from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bot.core.deadlines import add_months, due_at, due_date, is_working_day
from bot.core.law import DayKind
from bot.core.packs import load_law, load_pack
from bot.core.policy import Deadline, RequestType

CALENDAR_15 = Deadline(days=15, kind=DayKind.CALENDAR)
WORKING_15 = Deadline(days=15, kind=DayKind.WORKING)


def test_calendar_days_count_every_day() -> None:
    assert due_date(date(2026, 12, 20), CALENDAR_15, "BY") == date(2027, 1, 4)
    assert due_date(date(2026, 1, 31), Deadline(days=30, kind="calendar"), "BY") == date(2026, 3, 2)


def test_working_days_skip_weekends() -> None:
    # Monday 2 March 2026 + 5 working days: Tue-Fri (4), then Monday 9 March (5).
    assert due_date(date(2026, 3, 2), Deadline(days=5, kind="working"), "BY") == date(2026, 3, 9)
    # Friday + 1 working day = Monday.
    assert due_date(date(2026, 6, 5), Deadline(days=1, kind="working"), "BY") == date(2026, 6, 8)


def test_working_days_skip_belarus_public_holidays() -> None:
    # Independence Day, Friday 3 July 2026, is a public holiday in Belarus.
    assert not is_working_day(date(2026, 7, 3), "BY")
    assert due_date(date(2026, 7, 1), Deadline(days=2, kind="working"), "BY") == date(2026, 7, 6)
    # Across the New Year and Orthodox Christmas (1, 2, 7 January 2027):
    # received Thursday 31 Dec 2026; working days: 4, 5, 6, 8, 11-15, 18-22, 25 Jan.
    assert due_date(date(2026, 12, 31), WORKING_15, "BY") == date(2027, 1, 25)
    # The same 15 days as calendar days end on 15 January.
    assert due_date(date(2026, 12, 31), CALENDAR_15, "BY") == date(2027, 1, 15)


def test_the_same_count_differs_by_country() -> None:
    # 3 July is a holiday in Belarus but a working day in Germany.
    one = Deadline(days=1, kind="working")
    assert due_date(date(2026, 7, 2), one, "BY") == date(2026, 7, 6)
    assert due_date(date(2026, 7, 2), one, "DE") == date(2026, 7, 3)


def test_due_at_is_end_of_the_due_day_in_the_operators_zone() -> None:
    pack = load_pack("by_99z_sports")
    # 22:30 UTC on 31 Dec is already 1 Jan in Minsk (UTC+3): counting starts from 1 Jan.
    received = datetime(2026, 12, 31, 22, 30, tzinfo=UTC)
    moment = due_at(received, CALENDAR_15, "BY", pack.zone)
    assert moment.date() == date(2027, 1, 16)
    assert (moment.hour, moment.minute) == (23, 59)
    assert moment.utcoffset() is not None


@pytest.mark.parametrize("days", [0, -1, 400])
def test_deadline_bounds(days: int) -> None:
    with pytest.raises(ValueError):
        Deadline(days=days, kind="calendar")


FIVE_WORKING = Deadline(days=5, kind=DayKind.WORKING)


def test_a_transferred_working_saturday_counts_and_its_swapped_monday_does_not() -> None:
    # Belarus 2026: Monday 20 April is a day off moved from Saturday 25 April, which is worked;
    # Tuesday 21 April is Radunitsa. Received Thursday 16 April: Fri 17 (1), Wed 22 (2),
    # Thu 23 (3), Fri 24 (4), Sat 25 (5).
    assert is_working_day(date(2026, 4, 25), "BY")
    assert not is_working_day(date(2026, 4, 20), "BY")
    assert due_date(date(2026, 4, 16), FIVE_WORKING, "BY") == date(2026, 4, 25)
    # Without the transfer the count would end on Monday 27 April.
    assert due_date(date(2026, 4, 16), FIVE_WORKING, "DE") != date(2026, 4, 25)


def test_gdpr_terms_end_at_30_days_or_one_month_whichever_is_first() -> None:
    """GDPR art. 12(3) gives one month, the seed 30 days: the earlier end applies."""
    term = load_pack("gdpr_hosting").deadlines[RequestType.ACCESS]
    assert due_date(date(2027, 1, 1), term, "BY") == date(2027, 1, 31)  # 30 days < 1 month
    assert due_date(date(2027, 2, 1), term, "BY") == date(2027, 3, 1)  # 1 month < 30 days
    assert due_date(date(2027, 1, 31), term, "BY") == date(2027, 2, 28)  # the month's last day
    assert due_date(date(2028, 1, 31), term, "BY") == date(2028, 2, 29)
    assert due_date(date(2026, 11, 23), term, "BY") == date(2026, 12, 23)  # the same


def test_hours_run_from_the_moment() -> None:
    pack = load_pack("gdpr_hosting")
    known = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)  # a Friday
    assert due_at(known, load_law("gdpr").breach, "BY", pack.zone) == datetime(
        2026, 11, 30, 16, 30, tzinfo=UTC
    )


def test_months_end_on_the_last_day_when_the_day_is_missing() -> None:
    assert add_months(datetime(2027, 12, 31, tzinfo=UTC), 2) == datetime(2028, 2, 29, tzinfo=UTC)
    assert add_months(datetime(2026, 11, 30, tzinfo=UTC), 2) == datetime(2027, 1, 30, tzinfo=UTC)
    assert add_months(datetime(2026, 12, 23, tzinfo=UTC), 2) == datetime(2027, 2, 23, tzinfo=UTC)


def test_only_the_operators_country_calendar_is_loaded() -> None:
    """The holidays package would import all ~300 country modules (0.3 s of start-up)."""
    code = (
        "import sys; from datetime import date; from bot.core.deadlines import is_working_day; "
        "assert not is_working_day(date(2026, 1, 7), 'BY'); "
        "loaded = [m for m in sys.modules if m.startswith('holidays.countries')]; "
        "assert loaded == [], loaded"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=120)
