"""Breaches of personal-data protection: the facts staff record with /breach, each authority's
deadline from the laws of the pack (Law 99-Z art. 16: 3 working days; GDPR art. 33: 72 hours;
each authority is marked notified on its own, and the earliest deadline of one not yet notified
is tracked), the draft notice to the authorities (with the approximate numbers of
people and records and the reasons for a late notice, art. 33(3)-(4)), and telling the affected
users (GDPR art. 34) by a term of their own, as a campaign at the broadcast rate, so who was
told and when is recorded per user.

Every state change is a compare-and-set: a second press, or a second process, changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from bot.core.clock import Clock
from bot.core.deadlines import breach_terms, breach_users_due
from bot.core.i18n import LOCALES, translator
from bot.core.law import Law
from bot.core.policy import PolicyPack
from storage.enums import CampaignKind
from storage.models import Breach
from storage.repositories import Audience, Repositories

MAX_FIELD = 1000

# The lines of a /breach message: locale key (breach.words.*) -> field. The words themselves
# live in locales/, and those of every language are understood.
FIELD_WORDS = {
    "known": "known",
    "what": "what",
    "data": "categories",
    "measures": "measures",
    "consequences": "consequences",
    "affected": "affected",
    "people": "people",
    "records": "records",
    "delay": "delay",
}
REQUIRED = (
    "known",
    "what",
    "categories",
    "measures",
    "consequences",
    "affected",
    "people",
    "records",
)


@dataclass(frozen=True)
class BreachInput:
    known_at: datetime
    what: str
    categories: str
    measures: str
    consequences: str
    affected: str  # all | consent:<purpose> | ids:1,2,3
    people: str  # approximate numbers, as staff write them ("about 1200")
    records: str
    delay: str | None = None  # why the notice comes after the deadline


def parse_moment(text: str, pack: PolicyPack) -> datetime | None:
    """'28.11.2026 14:30' or '2026-11-28 14:30' in the operator's zone."""
    for pattern in ("%d.%m.%Y %H:%M", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text.strip(), pattern).replace(tzinfo=pack.zone)
        except ValueError:
            continue
    return None


@cache
def words(key: str) -> frozenset[str]:
    """The words for `breach.words.<key>` in every language (lowercase)."""
    return frozenset(
        word.lower()
        for locale in LOCALES
        for word in translator(locale)(f"breach.words.{key}").split()
    )


@cache
def fields() -> dict[str, str]:
    """Every language's name of a /breach line -> the field it fills."""
    return {word: field for key, field in FIELD_WORDS.items() for word in words(key)}


def parse_affected(text: str, pack: PolicyPack) -> str | None:
    """'all', 'consent marketing' or 'ids 1 2 3', in any language of locales/."""
    parts = re.split(r"[\s,]+", text.strip().lower())
    if len(parts) == 1 and parts[0] in words("all"):
        return "all"
    if len(parts) == 2 and parts[0] in words("consent"):
        return f"consent:{parts[1]}" if pack.consent_purpose(parts[1]) else None
    if len(parts) >= 2 and parts[0] in words("ids") and all(w.isdigit() for w in parts[1:]):
        return "ids:" + ",".join(parts[1:])
    return None


def parse_breach(text: str, pack: PolicyPack, now: datetime) -> BreachInput | None:
    """The facts from 'name: value' lines; None when one is missing, too long or wrong."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        field = fields().get(name.strip().lower())
        if sep and field and value.strip() and len(value.strip()) <= MAX_FIELD:
            values[field] = value.strip()
    if any(field not in values for field in REQUIRED):
        return None
    known_at = parse_moment(values["known"], pack)
    affected = parse_affected(values["affected"], pack)
    if known_at is None or known_at > now or affected is None:
        return None
    if "delay" not in values and breach_terms(pack, known_at)[0][1] < now:
        return None  # late: the notice must give the reasons for the delay (art. 33(1))
    return BreachInput(
        known_at=known_at,
        what=values["what"],
        categories=values["categories"],
        measures=values["measures"],
        consequences=values["consequences"],
        affected=affected,
        people=values["people"],
        records=values["records"],
        delay=values.get("delay"),
    )


class Breaches:
    def __init__(self, repo: Repositories, clock: Clock, pack: PolicyPack) -> None:
        self._repo = repo
        self._clock = clock
        self._pack = pack

    def now(self) -> datetime:
        return self._clock.now()

    def authority_due(self, known_at: datetime) -> datetime:
        """The earliest of the laws' deadlines (each is shown on the breach's screen)."""
        return breach_terms(self._pack, known_at)[0][1]

    async def record(self, staff_id: int, facts: BreachInput) -> Breach:
        breach = await self._repo.breaches.add(
            created_at=self._clock.now(),
            created_by=staff_id,
            known_at=facts.known_at,
            what=facts.what,
            categories=facts.categories,
            measures=facts.measures,
            consequences=facts.consequences,
            affected=facts.affected,
            authority_due_at=self.authority_due(facts.known_at),
            people=facts.people,
            records=facts.records,
            delay=facts.delay,
            users_due_at=breach_users_due(self._pack, facts.known_at),
        )
        # Committed before staff see its number and deadline: the breach register is evidence
        # (GDPR art. 33(5)), and a failed reply must not undo the record.
        await self._repo.commit()
        return breach

    async def get(self, breach_id: int) -> Breach | None:
        return await self._repo.breaches.get(breach_id)

    def knows(self, law: str) -> bool:
        """`law` is one of the pack's (callback data can be forged)."""
        return any(item.id == law for item in self._pack.under)

    async def notified(self, breach: Breach) -> dict[str, datetime]:
        """When each law's authority was notified (law id -> time). A breach marked before
        the marks were per law (one mark) counts as notified to every authority."""
        marks = {
            law: n.notified_at for law, n in (await self._repo.breaches.notices(breach.id)).items()
        }
        if breach.authority_notified_at is not None:
            for law in self._pack.under:
                marks.setdefault(law.id, breach.authority_notified_at)
        return marks

    def pending(self, breach: Breach, notified: dict[str, datetime]) -> list[Law]:
        """The laws whose authority is still to be notified, earliest deadline first."""
        terms = breach_terms(self._pack, breach.known_at)
        return [law for law, _ in terms if law.id not in notified]

    async def authority_notified(self, breach_id: int, staff_id: int, law: str) -> bool:
        """Staff sent the notice to the authority of `law` (one of the pack's): its deadline
        leaves the card, /due and the reminder follow the next authority's; when every one is
        notified, the breach leaves /due. False if already marked or not the pack's law."""
        repo, now = self._repo.breaches, self._clock.now()
        if not self.knows(law) or not await repo.lock_open(breach_id):
            await self._repo.session.rollback()
            return False
        done = await repo.add_notice(breach_id, law, staff_id, now)
        breach = await repo.get(breach_id)
        if done and breach is not None:
            notified = await repo.notices(breach_id)
            pending = [
                due
                for item, due in breach_terms(self._pack, breach.known_at)
                if item.id not in notified
            ]
            if pending:
                await repo.next_due(breach_id, pending[0])
            else:
                await repo.mark_notified(breach_id, staff_id, now)
        await self._repo.commit()  # before the button is answered (it can fail): the mark stands
        return done

    def recipients(self, breach: Breach) -> Audience:
        """Who is affected and still known (a query): erased people are gone from the users
        table; restricted users and users under a legal hold are told too."""
        kind, _, value = breach.affected.partition(":")
        if kind == "consent":
            return self._repo.breaches.consent_holders(value)
        ids = [int(v) for v in value.split(",")] if kind == "ids" else None
        return self._repo.breaches.existing_users(ids)

    async def affected(self, breach: Breach) -> int:
        return await self._repo.campaigns.audience_size(self.recipients(breach))

    async def tell_users(
        self, breach_id: int, staff_id: int, progress_message_id: int
    ) -> int | None:
        """Once: a campaign to the affected users. Returns its ID, or None if already told."""
        breach = await self._repo.breaches.get(breach_id)
        if breach is None:
            return None
        now = self._clock.now()
        campaign = await self._repo.campaigns.create(
            kind=CampaignKind.BREACH, body="", created_by=staff_id, now=now
        )
        if not await self._repo.breaches.claim_telling(breach_id, campaign.id, now):
            await self._repo.session.rollback()
            return None
        await self._repo.campaigns.start(
            campaign.id, self.recipients(breach), now=now, progress_message_id=progress_message_id
        )
        # Committed here, not with the update: the campaign runner started next reads the
        # queue from its own session.
        await self._repo.commit()
        return campaign.id
