"""Answer deadlines: N calendar days, N working days in the operator's country, or N hours.

Working days come from the `holidays` package's data for the country: weekends and public
holidays are days off, and where the government moves a working day (Belarus: a Saturday
declared a working day in exchange for a weekday off next to a holiday) the Saturday counts as a
working day and the swapped weekday does not. A pack's calendar file (bot/packs/calendars/)
adds the transfers the package does not have yet; they override it.

A pack under several laws gets, for each request, every law's term computed on that law's
calendar (and the policy's own term, if it promises one): the earliest due date applies.
"""

from __future__ import annotations

import calendar
import importlib.util
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.core.law import DayKind
from bot.core.policy import Deadline, Law, PolicyPack, RequestType, Transfers

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


def is_working_day(day: date, country: str, transfers: Transfers | None = None) -> bool:
    """A working day in `country`: not a weekend or holiday, or a weekend declared working.
    `transfers` (the pack's) override the package."""
    if transfers is not None:
        if any(s.date == day for s in transfers.days_off):
            return False
        if any(s.date == day for s in transfers.working_days):
            return True
    return bool(_calendar(country, day.year).is_working_day(day))


def package_has_transfers(country: str, year: int) -> bool:
    """Whether the package knows the year's working-day transfers (a worked weekend day)."""
    return any(d.year == year for d in _calendar(country, year).weekend_workdays)


def due_date(
    received: date, deadline: Deadline, country: str, transfers: Transfers | None = None
) -> date:
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
        if is_working_day(day, country, transfers):
            left -= 1
    return day


def end_of_day(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=zone)


def due_at(
    received_at: datetime,
    deadline: Deadline,
    country: str,
    zone: ZoneInfo,
    transfers: Transfers | None = None,
) -> datetime:
    """The due moment: the end of the due day in the operator's time zone, as an aware datetime.
    An hours deadline (GDPR art. 33: 72 hours) runs from the moment itself."""
    if deadline.kind is DayKind.HOURS:
        return received_at + timedelta(hours=deadline.days)
    local_day = received_at.astimezone(zone).date()
    return end_of_day(due_date(local_day, deadline, country, transfers), zone)


@dataclass(frozen=True)
class Term:
    """One term that applies: a law's (None: the policy's own promise), on its calendar."""

    deadline: Deadline
    country: str
    law: Law | None

    def due(self, start: datetime, pack: PolicyPack) -> datetime:
        transfers = pack.transfers(self.country)
        return due_at(start, self.deadline, self.country, pack.zone, transfers)


def _country(pack: PolicyPack, law: Law | None) -> str:
    return (law.calendar if law else None) or pack.operator.country


def terms(pack: PolicyPack, kind: RequestType) -> list[Term]:
    """Every term for a request of `kind`: the policy's own (first: it is shown on a tie),
    then each law's that sets one."""
    found = []
    if pack.laws and kind in pack.deadlines:  # a single-law pack's deadlines are its law's
        found.append(Term(pack.deadlines[kind], pack.operator.country, None))
    found += [
        Term(law.deadlines[kind], _country(pack, law), law)
        for law in pack.under
        if kind in law.deadlines
    ]
    return found


def strictest(pack: PolicyPack, kind: RequestType, start: datetime) -> tuple[Term, datetime]:
    """The term that ends first for a request of `kind` received at `start`, and its end."""
    ends = [(term.due(start, pack), index, term) for index, term in enumerate(terms(pack, kind))]
    moment, _, term = min(ends, key=lambda e: (e[0], e[1]))
    return term, moment


# An ordinary working Monday with no holiday near: the day `shown_term` compares terms on.
_ORDINARY_DAY = date(2026, 3, 2)


def shown_term(pack: PolicyPack, kind: RequestType) -> Deadline | None:
    """The term texts name for a request type (the consent screen's rights): the one that ends
    first for a request received on an ordinary working day. A request's own due date is always
    computed on its own dates (`request_due`). None: no term applies (a complaint)."""
    if not terms(pack, kind):
        return None
    start = datetime.combine(_ORDINARY_DAY, time(12), tzinfo=pack.zone)
    return strictest(pack, kind, start)[0].deadline


def request_due(pack: PolicyPack, kind: str, start: datetime) -> datetime:
    return strictest(pack, RequestType(kind), start)[1]


def extension_months(pack: PolicyPack, kind: str) -> int:
    """Months a term may be extended by: none where any law setting it allows none."""
    laws = [law for law in pack.under if RequestType(kind) in law.deadlines]
    return min([pack.requests.extension_months, *(law.extension_months for law in laws)])


def breach_terms(pack: PolicyPack, known_at: datetime) -> list[tuple[Law, datetime]]:
    """Each law's deadline to notify its authority of a breach, earliest first."""
    dues = [
        (law, Term(law.breach, _country(pack, law), law).due(known_at, pack)) for law in pack.under
    ]
    return sorted(dues, key=lambda d: d[1])


def breach_users_due(pack: PolicyPack, known_at: datetime) -> datetime:
    """When the affected people are to be told: the pack's term, else the earliest notice."""
    rule = pack.breach.users
    if rule is None:
        return breach_terms(pack, known_at)[0][1]
    return Term(rule, pack.operator.country, None).due(known_at, pack)


def missing_transfers(pack: PolicyPack, today: date, ahead: int = 60) -> list[tuple[str, int]]:
    """(country, year) pairs within `ahead` days of `today` whose working-day transfers neither
    the package nor the pack has, for every country whose working days a term counts (a law's,
    or the policy's own on the operator's calendar)."""
    own = [*pack.deadlines.values(), *(r for r in (pack.breach.users,) if r)]
    rules = [
        (_country(pack, law), r)
        for law in pack.under
        for r in (*law.deadlines.values(), law.breach)
    ]
    rules += [(pack.operator.country, r) for r in own]
    countries = sorted({country for country, rule in rules if rule.kind is DayKind.WORKING})
    years = range(today.year, (today + timedelta(days=ahead)).year + 1)
    return [
        (country, year)
        for country in countries
        for year in years
        if not package_has_transfers(country, year)
        and not ((t := pack.transfers(country)) and t.covers(year))
    ]


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` later; the month's last day where that day does not exist
    (31 January + 1 month = 28 or 29 February)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return moment.replace(year=year, month=month, day=min(moment.day, last))
