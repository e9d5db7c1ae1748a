"""The vocabulary packs and laws share: texts in every language, request types, terms,
authorities and the laws of the catalogue (bot/packs/laws/) with the working-day transfers that
correct their calendars (bot/packs/calendars/). bot/core/policy.py builds a pack from them."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NonEmpty = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Model):
    """A text the user reads, in every supported language."""

    ru: NonEmpty
    en: NonEmpty

    def get(self, locale: str) -> str:
        return self.en if locale == "en" else self.ru


class RequestType(StrEnum):
    ACCESS = "access"
    DISCLOSURES = "disclosures"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    RESTRICTION = "restriction"
    OBJECTION = "objection"
    PORTABILITY = "portability"
    WITHDRAWAL = "withdrawal"
    COMPLAINT = "complaint"


class DayKind(StrEnum):
    CALENDAR = "calendar"
    WORKING = "working"
    HOURS = "hours"  # GDPR art. 33: 72 hours; written `{ hours = 72 }` in a pack


class Deadline(_Model):
    """N calendar days, N working days, or N hours (`days` then holds the hours).
    `at_most_months`: calendar days that may not end later than that many months (the GDPR's
    one month against a policy's 30 days: whichever ends first)."""

    days: Annotated[int, Field(ge=1, le=366)]
    kind: DayKind
    at_most_months: Annotated[int, Field(ge=1, le=12)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _hours(cls, raw: object) -> object:
        if isinstance(raw, dict) and set(raw) == {"hours"}:
            return {"days": raw["hours"], "kind": DayKind.HOURS}
        return raw


class Contacts(_Model):
    email: str | None = None
    phone: str | None = None
    website: str | None = None
    address: Text | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and "@" not in value:
            raise ValueError("is not an e-mail address")
        return value


class Authority(_Model):
    name: Text  # written so that it reads after «в» / "to" (accusative, lower case)
    # The authority as the operator addresses it (a breach notice), where `name` speaks to the
    # person ("where you live"); None: `name`. Also read after «в» / "to".
    staff_name: Text | None = None
    contacts: Contacts
    court: Text | None = None  # the judicial remedy, named in every refusal
    # The sentence on going to court (Law 99-Z art. 15: the authority's decision is appealed
    # to a court; GDPR arts. 78-79). None: "You may also go to {court}".
    appeal: Text | None = None


class Terms(_Model):
    """The law's words for the authority and for processors (99-Z: «уполномоченный орган»,
    «уполномоченные лица»; GDPR: «надзорный орган», «обработчики»), nominative case. Where
    neither the law nor the pack gives them, the catalogue's `terms.*` (locales) are used."""

    authority: Text
    processors: Text


CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class Law(_Model):
    """A law a pack is under, from the catalogue bot/packs/laws/<id>.toml: its name, its
    authority, the country whose working days it counts (None: the operator's) and its terms."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    name: Text
    authority: Authority
    calendar: CountryCode | None = None
    deadlines: dict[RequestType, Deadline]
    breach: Deadline  # notice to the authority
    extension_months: Annotated[int, Field(ge=0, le=2)] = 0
    words: Terms | None = None  # the law's own words for its authority (None: the pack's)


class Shift(_Model):
    """A day the government made a day off or a working day, and the act that did it."""

    date: date
    act: NonEmpty


class Transfers(_Model):
    """Working-day transfers of one country that override the `holidays` package
    (bot/packs/calendars/<country>.toml): `years` are those whose transfers are complete here,
    also when a year has none."""

    country: CountryCode
    years: list[int] = Field(default_factory=list)
    days_off: list[Shift] = Field(default_factory=list)
    working_days: list[Shift] = Field(default_factory=list)

    def covers(self, year: int) -> bool:
        return year in self.years or any(s.date.year == year for s in self.shifts)

    @property
    def shifts(self) -> list[Shift]:
        return [*self.days_off, *self.working_days]
