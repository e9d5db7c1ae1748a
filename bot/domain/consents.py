"""Consent rules: the append-only ledger, the derived state, re-confirmation after changes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from html import escape

from bot.core.clock import Clock
from bot.core.formatting import fmt_date
from bot.core.i18n import translator
from bot.core.policy import PolicyPack, Purpose, RequestType
from bot.domain.onboarding import needs_guardian
from bot.domain.requests.filing import add_request
from storage.enums import OutboxKind
from storage.models import ConsentEvent, ConsentState, User
from storage.repositories import LostRace, Repositories


class Source(StrEnum):
    """Why a consent event happened; kept in the ledger."""

    TOGGLE = "toggle"
    UNSUBSCRIBE = "unsubscribe"
    GUARDIAN = "guardian"
    STAFF = "staff"
    RECONSENT = "reconsent"
    OBJECTION = "objection"


class ConsentOutcome(StrEnum):
    CHANGED = "changed"
    UNCHANGED = "unchanged"  # a double tap, or a stale button: nothing recorded
    LOCKED = "locked"  # a minor's grant: only their legal representative may give it
    NOT_SHOWN = "not_shown"  # an "I agree" for a consent screen this person was not shown
    FROZEN = "frozen"  # a legal hold: data is only stored, nothing new is granted
    UNKNOWN = "unknown"  # not a consent purpose of this pack


@dataclass(frozen=True)
class ConsentView:
    purpose: Purpose
    granted: bool
    needs_reconfirm: bool  # granted under terms that have since changed materially
    since: ConsentState | None

    @property
    def effective(self) -> bool:
        return self.granted and not self.needs_reconfirm


def text_id(locale: str, body: str) -> str:
    return hashlib.sha256(f"{locale}\n{body}".encode()).hexdigest()[:32]


def grant_allowed(minor: bool, source: Source) -> bool:
    """Under the consent age (not married where marriage counts), every optional consent is
    given by a confirmed legal representative only (seed 002, 5.3 and 5.6; Law 99-Z art. 5).
    The minor may still withdraw."""
    return not minor or source is Source.GUARDIAN


def offer_key(subject_id: int, purpose_id: str) -> str:
    return f"{subject_id}:{purpose_id}"


class Consents:
    def __init__(self, repo: Repositories, clock: Clock, pack: PolicyPack) -> None:
        self._repo = repo
        self._clock = clock
        self._pack = pack

    async def views(self, user_id: int) -> list[ConsentView]:
        states = await self._repo.consents.states(user_id)
        result = []
        for purpose in self._pack.consent_purposes:
            state = states.get(purpose.id)
            granted = bool(state and state.granted)
            stale = (
                granted
                and state is not None
                and (state.policy_version not in self._pack.valid_consent_versions(purpose))
            )
            result.append(ConsentView(purpose, granted, stale, state))
        return result

    async def represented(self, guardian_id: int, minor_id: int) -> User | None:
        """The minor `minor_id`, if `guardian_id` is their confirmed legal representative."""
        minor = await self._repo.users.get(minor_id)
        if minor is None or not await self._repo.guardians.is_guardian(guardian_id, minor.id):
            return None
        return minor

    @staticmethod
    def grant_source(source: Source, view: ConsentView) -> Source:
        """A person's own grant of a consent given under terms since changed re-confirms it."""
        return Source.RECONSENT if view.needs_reconfirm and source is Source.TOGGLE else source

    async def effective(self, user_id: int, purpose_id: str) -> bool:
        return any(v.effective for v in await self.views(user_id) if v.purpose.id == purpose_id)

    async def set(
        self,
        user_id: int,
        purpose_id: str,
        granted: bool,
        *,
        source: Source,
        actor_id: int,
        locale: str,
        shown_text: str,
        minor: bool = False,
        notify: str | None = None,
    ) -> ConsentOutcome:
        """Grant or withdraw one consent: one ledger event and the new state, one transaction.

        Granting again what is granted under the current terms, or withdrawing what is not
        granted, records nothing (double taps, stale buttons). `notify` is a message for the
        person, queued in the same transaction (when someone else changed their consent).
        """
        purpose = self._pack.consent_purpose(purpose_id)
        if purpose is None:
            return ConsentOutcome.UNKNOWN
        if granted and not grant_allowed(minor, source):
            return ConsentOutcome.LOCKED
        if granted and await self._repo.requests.hold_until(user_id, self._clock.now()):
            return ConsentOutcome.FROZEN
        version = self._pack.policy.version
        shown = text_id(locale, shown_text)
        try:
            changed = await self._repo.consents.record(
                user_id,
                purpose_id,
                granted,
                at=self._clock.now(),
                policy_version=version,
                source=source,
                actor_id=actor_id,
                text=(shown, locale, shown_text),
            )
        except LostRace:
            await self._repo.session.rollback()  # the other writer's change stands
            return ConsentOutcome.UNCHANGED
        if not changed:
            return ConsentOutcome.UNCHANGED
        if not granted and purpose.withdrawal_task:
            await self._file_withdrawal_task(user_id, purpose)
        if notify is not None:
            await self._repo.outbox.add(
                kind=OutboxKind.TO_USER, user_id=user_id, text=notify, now=self._clock.now()
            )
        # Committed here, not by the update: the ledger is the proof of consent, and the person
        # is told "granted/withdrawn at T" next; a crash between the two must leave the record,
        # never a person told of a change that is not in the ledger.
        await self._repo.commit()
        return ConsentOutcome.CHANGED

    async def recorded_by_staff(
        self, user: User, purpose_id: str, granted: bool, staff_id: int, notice: str
    ) -> ConsentOutcome:
        """A change the user asked for in writing, recorded by staff: `notice` (in the user's
        language) is both the text the ledger keeps as shown and the message the user gets."""
        return await self.set(
            user.id,
            purpose_id,
            granted,
            source=Source.STAFF,
            actor_id=staff_id,
            locale=translator(user.language).locale,
            shown_text=notice,
            minor=needs_guardian(user.age_group, self._pack),
            notify=notice,
        )

    async def _file_withdrawal_task(self, user_id: int, purpose: Purpose) -> None:
        """The ledger changed at once; processing beyond messages (training, transfer) must also
        stop and its data be deleted or anonymised within the pack's term (Law 99-Z art. 10):
        a card for staff, and the user is told its number and date."""
        now = self._clock.now()
        task = await add_request(
            self._repo, self._pack, user_id, RequestType.WITHDRAWAL, {"purpose": purpose.id}, now
        )
        user = await self._repo.users.get(user_id)
        if user is None:
            return
        t = translator(user.language)
        text = t(
            "requests.notify_withdrawal_task",
            id=task.id,
            purpose=escape(purpose.title.get(t.locale)),
            due=fmt_date(task.due_at, t, self._pack.zone),
        )
        await self._repo.outbox.add(
            kind=OutboxKind.TO_USER, user_id=user_id, request_id=task.id, text=text, now=now
        )

    def now(self) -> datetime:
        return self._clock.now()

    async def history(self, user_id: int, limit: int = 25) -> list[ConsentEvent]:
        return await self._repo.consents.events(user_id, limit=limit)
