"""Policy packs: one TOML file per operator, validated at start.

A pack describes everything the bot tells users and every rule it applies on behalf of one
operator: identity and contacts, policy version, purposes with legal bases, rights offered and
the deadline of each request type. Operators write their own pack without touching code.
Reading one (and the laws and calendars it names) is bot/core/packs.py's.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from bot.core.law import (
    Authority,
    Contacts,
    CountryCode,
    Deadline,
    Law,
    NonEmpty,
    RequestType,
    Terms,
    Text,
    Transfers,
    _Model,
)
from bot.core.not_given import NOT_GIVEN_FIELDS, NotGivenField, content_version, field_value
from bot.core.systems import System, check_systems


class LegalBasis(StrEnum):
    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    LEGITIMATE_INTERESTS = "legitimate_interests"


class Operator(_Model):
    legal_name: Text
    registration_number: str | None = None
    address: Text | None = None  # None only when listed in the pack's `not_given`
    country: CountryCode
    contacts: Contacts
    authority: Authority | None = None  # a single-law pack's authority (with `law`)


Url = Annotated[str, Field(pattern=r"^https?://\S+$")]


class PreviousPolicy(_Model):
    version: NonEmpty
    effective_date: date | None = None
    url: Url | None = None


class PolicyInfo(_Model):
    # When the policy gives no version (`not_given`), the pack's identifier plus a hash of the
    # pack's content: what every consent and notice record carries.
    version: NonEmpty
    effective_date: date | None = None  # None only when listed in `not_given`
    url: Url | None = None  # None only when listed in `not_given`
    changes: Text | None = None  # what changed since the previous version, told to every user
    history: list[PreviousPolicy] = Field(default_factory=list)  # oldest first, stays viewable

    @property
    def versions(self) -> list[str]:
        """Every version, oldest first."""
        return [p.version for p in self.history] + [self.version]


class NextPolicy(_Model):
    """The next version, announced before it takes effect (seed 002, 8.3)."""

    version: NonEmpty
    effective_date: date
    url: Url
    changes: Text


class AgeRule(_Model):
    consent_age: Annotated[int, Field(ge=13, le=18)] = 16
    marriage_lowers: bool


class Country(_Model):
    """A country data goes to; where protection is not adequate, the risks are told."""

    name: Text
    adequate: bool
    risks: Text | None = None

    @model_validator(mode="after")
    def _risks(self) -> Country:
        if not self.adequate and self.risks is None:
            raise ValueError("a country without adequate protection needs 'risks'")
        return self


class Processor(_Model):
    """An authorised person (processor) or recipient by name, country and role (Law 99-Z arts.
    5, 11; GDPR arts. 13(1)(e), 15(1)(c)). A name or country the policy does not give is left
    out and listed in `not_given`; the role is always given. A plain `{ ru, en }` text is read
    as a role whose name and country are not given."""

    name: Text | None = None
    country: Text | None = None
    role: Text
    not_given: list[Literal["name", "country"]] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _category(cls, raw: object) -> object:
        if isinstance(raw, dict) and set(raw) == {"ru", "en"}:
            return {"role": raw, "not_given": ["name", "country"]}
        return raw

    @model_validator(mode="after")
    def _marked(self) -> Processor:
        for field in ("name", "country"):
            if (getattr(self, field) is None) != (field in self.not_given):
                raise ValueError(f"'{field}' must be given or listed in not_given, not both")
        return self


class Purpose(_Model):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    title: Text
    description: Text
    legal_basis: LegalBasis
    requires_consent: bool
    data_categories: Annotated[list[Text], Field(min_length=1)]
    retention: Text
    processors: list[Processor] = Field(default_factory=list)
    recipients: list[Text] = Field(default_factory=list)  # third parties, e.g. state bodies
    interest: Text | None = None  # the legitimate interest pursued (GDPR art. 13(1)(d))
    actions: Text | None = None  # the list of actions with the data for this purpose
    cross_border: Text | None = None
    countries: list[Country] = Field(default_factory=list)
    methods: Text | None = None
    # Processing beyond sending messages: a withdrawal also files a task for staff to stop it
    # and delete or anonymise what it produced (model training, transfer abroad).
    withdrawal_task: bool = False
    source: Text | None = None  # where the data comes from; default: from the user, here
    # What refusing (or withdrawing) this consent means for the person (Law 99-Z art. 5(1)).
    if_refused: Text | None = None
    # The policy version whose consent terms for this purpose are current: consents given under
    # an older version must be confirmed again (a material change). None: any version counts.
    terms_version: str | None = None

    @model_validator(mode="after")
    def _consent_matches_basis(self) -> Purpose:
        if self.requires_consent != (self.legal_basis is LegalBasis.CONSENT):
            raise ValueError("requires_consent must be true exactly when legal_basis is 'consent'")
        if self.legal_basis is LegalBasis.LEGITIMATE_INTERESTS and self.interest is None:
            raise ValueError("a legitimate-interests purpose must state the 'interest' pursued")
        if self.requires_consent and self.actions is None:
            raise ValueError("a consent purpose must list its 'actions' (Law 99-Z art. 5)")
        return self


class Marketing(_Model):
    purpose: str
    reason: Text


class ClarifyRule(StrEnum):
    RESTART = "restart"  # the term runs again from the answer (seed 002 ch. 7)
    PAUSE = "pause"  # the term stops while the operator waits and resumes (GDPR practice)


class RequestRules(_Model):
    clarify: ClarifyRule
    extension_months: Annotated[int, Field(ge=0, le=2)] = 0  # GDPR art. 12(3): two more
    # Clarifications (restarts or pauses of the term) an agent may ask per request; further
    # ones need a DPO and a reason, recorded and shown on the card.
    agent_clarifications: Annotated[int, Field(ge=0, le=5)] = 1


class RefusalGround(_Model):
    """A ground the pack's law gives for refusing a request, with its article: the card offers
    the grounds of the request's type, the user is told the ground and its article. `id` is
    stored with the refusal and sent in callback data: never rename one (`unfounded` is GDPR
    art. 12(5), stored as `refusal_unfounded` since before grounds were pack data)."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,23}$")]
    title: Text  # short: it is the card's button and the line the user reads
    article: Text
    types: list[RequestType] = Field(default_factory=list)  # empty: every request type

    def applies(self, kind: str) -> bool:
        return not self.types or kind in self.types


class BreachRules(_Model):
    authority: Deadline | None = None  # a single-law pack's term, or a policy's own promise
    # Telling the affected people (GDPR art. 34(1): without undue delay). None: by the
    # authority's earliest deadline.
    users: Deadline | None = None


class RetentionRules(_Model):
    inactive_days: Annotated[int, Field(ge=30)]
    erasure_records_days: Annotated[int, Field(ge=30)]
    # How long the data collected from the operator's systems for an access answer stays in the
    # bot's database after it was delivered (then only the counts remain).
    access_data_days: Annotated[int, Field(ge=1, le=365)] = 30


class PolicyPack(_Model):
    id: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    # The laws the operator is under, from the catalogue (bot/packs/laws/), each term the
    # strictest of them; or, for a single-law pack, `law` with `operator.authority`, `deadlines`
    # and `breach.authority`.
    laws: list[Law] = Field(default_factory=list)
    law: Text | None = None
    calendars: list[Transfers] = Field(default_factory=list)
    not_given: list[NotGivenField] = Field(default_factory=list)
    terms: Terms | None = None  # None: the law's words, else locales' `terms.*`
    # The policy says its Russian text prevails (seed 002, 8.5): translations say so.
    russian_prevails: bool = False
    timezone: str
    operator: Operator
    policy: PolicyInfo
    age: AgeRule
    purposes: Annotated[list[Purpose], Field(min_length=1)]
    rights: Annotated[list[RequestType], Field(min_length=1)]
    deadlines: dict[RequestType, Deadline] = Field(default_factory=dict)  # the policy's own terms
    phone_verified: list[RequestType] = Field(default_factory=list)
    marketing: Marketing | None = None
    requests: RequestRules
    refusal_grounds: list[RefusalGround] = Field(default_factory=list)
    breach: BreachRules = BreachRules()
    retention: RetentionRules
    automated_decisions: Text | None = None  # the statement the access answer repeats
    next_policy: NextPolicy | None = None
    # The data categories the operator's systems hold, by id (`[categories]`), and the systems
    # themselves (`[[systems]]`, bot/core/systems.py): requests are carried out in each.
    categories: dict[str, Text] = Field(default_factory=dict)
    systems: list[System] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _version(cls, raw: object) -> object:
        """A policy without a version gets the pack's content version (see content_version)."""
        if not isinstance(raw, dict) or "policy.version" not in raw.get("not_given", []):
            return raw
        policy = raw.get("policy")
        if not isinstance(policy, dict) or "version" in policy:
            return raw  # the check below reports a version both given and not given
        return {**raw, "policy": {**policy, "version": content_version(raw)}}

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a known IANA time zone") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PolicyPack:
        ids = [p.id for p in self.purposes]
        if len(ids) != len(set(ids)):
            raise ValueError("purposes: every purpose id must be unique")
        if not self.laws and (
            self.law is None or self.operator.authority is None or self.breach.authority is None
        ):
            raise ValueError(
                'laws: name the laws (e.g. laws = ["by_99z"]), or give `law`, '
                "`operator.authority` and `breach.authority` for a single law of your own"
            )
        for right in self.rights:
            governed = any(right in law.deadlines for law in self.under)
            if right is not RequestType.COMPLAINT and not governed:
                raise ValueError(f"deadlines: the right '{right}' is offered but has no deadline")
        for kind in self.deadlines:
            if kind not in self.rights and kind is not RequestType.DISCLOSURES:
                raise ValueError(f"deadlines: '{kind}' has a deadline but is not in rights")
        for kind in self.phone_verified:
            if kind not in self.rights:
                raise ValueError(f"phone_verified: '{kind}' is not in rights")
        for purpose in self.purposes:
            if purpose.terms_version and purpose.terms_version not in self.policy.versions:
                raise ValueError(
                    f"purposes: '{purpose.id}' terms_version is not a version in policy.history"
                )
        grounds = [g.id for g in self.refusal_grounds]
        if len(grounds) != len(set(grounds)):
            raise ValueError("refusal_grounds: every ground id must be unique")
        for ground in self.refusal_grounds:
            for kind in ground.types:
                if kind not in self.rights and kind not in self.deadlines:
                    raise ValueError(f"refusal_grounds: '{ground.id}' names '{kind}', not filed")
        if self.marketing and self.marketing.purpose not in {p.id for p in self.consent_purposes}:
            raise ValueError("marketing.purpose must name a purpose that requires consent")
        current = self.policy.effective_date
        if self.next_policy and current and self.next_policy.effective_date <= current:
            raise ValueError("next_policy.effective_date must be after policy.effective_date")
        self._check_not_given()
        check_systems(self.categories, self.systems)
        return self

    def _check_not_given(self) -> None:
        for dotted in NOT_GIVEN_FIELDS:
            listed = dotted in self.not_given
            if dotted == "policy.version":
                if listed and not self.policy.version.startswith(f"{self.id}-"):
                    raise ValueError("not_given: 'policy.version' is listed but a version is given")
                continue
            missing = field_value(self, dotted) is None
            if listed and not missing:
                raise ValueError(f"not_given: '{dotted}' is listed but given")
            if missing and not listed and dotted != "operator.registration_number":
                raise ValueError(f"{dotted}: give it or list it in not_given")

    @property
    def version_given(self) -> bool:
        return "policy.version" not in self.not_given

    def missing_fields(self) -> list[str]:
        """What an operator must still fill in: the fields listed as not given, and every
        processor's name or country the policy does not give."""
        missing: list[str] = list(self.not_given)
        for purpose in self.purposes:
            for index, processor in enumerate(purpose.processors):
                if processor.not_given:
                    fields = ", ".join(processor.not_given)
                    where = f"purposes.{purpose.id}.processors[{index}]"
                    missing.append(f"{where}: {fields} ({processor.role.en})")
        return missing

    @property
    def under(self) -> list[Law]:
        """The laws whose terms apply: the catalogue's, or a single-law pack's own."""
        if self.laws:
            return self.laws
        assert self.law is not None and self.operator.authority is not None
        assert self.breach.authority is not None
        own = Law(
            id="pack",
            name=self.law,
            authority=self.operator.authority,
            deadlines=self.deadlines,
            breach=self.breach.authority,
            extension_months=self.requests.extension_months,
        )
        return [own]

    @property
    def authorities(self) -> list[Authority]:
        """Every authority a person may complain to, once each (Law 99-Z art. 15, GDPR 77)."""
        found: list[Authority] = []
        for law in self.under:
            if law.authority not in found:
                found.append(law.authority)
        return found

    @property
    def authority_words(self) -> list[tuple[Authority, Terms | None]]:
        """Every authority once, with its law's words for it (99-Z «уполномоченный орган», GDPR
        «надзорный орган»), else the pack's `terms` (None: the locales' default words)."""
        found: list[tuple[Authority, Terms | None]] = []
        for law in self.under:
            if all(law.authority != authority for authority, _ in found):
                found.append((law.authority, law.words or self.terms))
        return found

    def law_names(self, locale: str) -> str:
        return "; ".join(law.name.get(locale) for law in self.under)

    def transfers(self, country: str) -> Transfers | None:
        return next((c for c in self.calendars if c.country == country), None)

    @property
    def consent_purposes(self) -> list[Purpose]:
        return [p for p in self.purposes if p.requires_consent]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def in_force(self, day: date) -> PolicyPack:
        """The pack as of `day`: once the announced next version's date has come, it is the
        current policy and the old one joins the history (its users are told at their next
        interaction, and consents needing confirmation are asked again)."""
        upcoming = self.next_policy
        if upcoming is None or day < upcoming.effective_date:
            return self
        old = PreviousPolicy(
            version=self.policy.version,
            effective_date=self.policy.effective_date,
            url=self.policy.url,
        )
        policy = PolicyInfo(
            version=upcoming.version,
            effective_date=upcoming.effective_date,
            url=upcoming.url,
            changes=upcoming.changes,
            history=[*self.policy.history, old],
        )
        # The announced version gives its number, date and address: none of them is missing now.
        given = {"policy.version", "policy.effective_date", "policy.url"}
        not_given = [f for f in self.not_given if f not in given]
        return self.model_copy(
            update={"policy": policy, "next_policy": None, "not_given": not_given}
        )

    def advance(self, now: datetime) -> bool:
        """On the announced next version's day, become it in place, so a running process
        applies it without a restart: every service of the app holds this one object (build_app
        gives the app a copy of its own). The one change a pack ever undergoes; True when it
        happened now."""
        upcoming = self.next_policy
        if upcoming is None or now.astimezone(self.zone).date() < upcoming.effective_date:
            return False
        current = self.in_force(upcoming.effective_date)
        for name in ("policy", "next_policy", "not_given"):
            object.__setattr__(self, name, getattr(current, name))  # frozen for everyone else
        return True

    def valid_consent_versions(self, purpose: Purpose) -> set[str]:
        """Policy versions under which a consent to `purpose` still covers the current terms."""
        versions = self.policy.versions
        if purpose.terms_version is None:
            return set(versions)
        return set(versions[versions.index(purpose.terms_version) :])

    def consent_purpose(self, purpose_id: str) -> Purpose | None:
        return next((p for p in self.consent_purposes if p.id == purpose_id), None)

    def purpose(self, purpose_id: str) -> Purpose | None:
        return next((p for p in self.purposes if p.id == purpose_id), None)

    def system(self, system_id: str) -> System | None:
        return next((s for s in self.systems if s.id == system_id), None)

    def grounds_for(self, kind: str) -> list[RefusalGround]:
        """The refusal grounds the pack's law gives for a request of this type."""
        return [g for g in self.refusal_grounds if g.applies(kind)]

    def ground(self, kind: str, ground_id: str) -> RefusalGround | None:
        """The ground `ground_id` for a request of this type; None for anything else (a
        forged id, a ground of another law, a ground for another type)."""
        return next((g for g in self.grounds_for(kind) if g.id == ground_id), None)
