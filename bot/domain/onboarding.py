"""Onboarding rules: who the user is, their age answer, and the legal representative's link."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.core.clock import Clock
from bot.core.formatting import fmt_datetime
from bot.core.i18n import translator
from bot.core.policy import PolicyPack
from storage.enums import OutboxKind
from storage.models import GuardianConfirmation, GuardianLink, User
from storage.repositories import Repositories

GUARDIAN_LINK_TTL = timedelta(days=7)
GUARDIAN_PAYLOAD_PREFIX = "rep_"


class AgeGroup(StrEnum):
    ADULT = "adult"
    MINOR = "minor"
    MINOR_MARRIED = "minor_married"


def age_answers(pack: PolicyPack) -> list[AgeGroup]:
    """The answers the age gate offers: marriage is offered only where the law counts it."""
    answers = [AgeGroup.ADULT, AgeGroup.MINOR]
    if pack.age.marriage_lowers:
        answers.append(AgeGroup.MINOR_MARRIED)
    return answers


def needs_guardian(age_group: str | None, pack: PolicyPack) -> bool:
    """True when optional consents need a legal representative's confirmation."""
    if age_group == AgeGroup.MINOR:
        return True
    if age_group == AgeGroup.MINOR_MARRIED:
        return not pack.age.marriage_lowers
    return False


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LinkProblem(StrEnum):
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    OWN = "own"
    GUARDIAN_IS_MINOR = "guardian_is_minor"


@dataclass(frozen=True)
class LinkCheck:
    link_id: int | None = None
    minor: User | None = None
    problem: LinkProblem | None = None


@dataclass(frozen=True)
class Profile:
    """Who Telegram says the sender is, and the language they read."""

    id: int
    language: str
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None


@dataclass(frozen=True)
class GuardianInvite:
    payload: str  # the deep-link `start` parameter, carries the secret token
    expires_at: datetime
    replaced: bool = False  # a link that still worked was voided for this one


@dataclass(frozen=True)
class WaitingLink:
    """A link the minor was given that still works (its token is not kept: only its times)."""

    sent_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class ConsentStatus:
    locked: bool
    confirmation: GuardianConfirmation | None


class Onboarding:
    """Everything the first minutes with the bot change in the database."""

    def __init__(self, repo: Repositories, clock: Clock, pack: PolicyPack) -> None:
        self._repo = repo
        self._clock = clock
        self._pack = pack

    async def register(self, profile: Profile, known: User | None) -> User:
        """Find or create the user; keeps the Telegram profile fields current. `known` is the
        sender as loaded at the start of the update (None: not stored yet)."""
        return await self._upsert(profile, known)

    async def _upsert(self, profile: Profile, user: User | None) -> User:
        if user is None:
            return await self._repo.users.create(
                profile.id,
                language=profile.language,
                username=profile.username,
                first_name=profile.first_name,
                last_name=profile.last_name,
                now=self._clock.now(),
            )
        user.username, user.first_name = profile.username, profile.first_name
        user.last_name = profile.last_name
        user.blocked_bot = False  # they are writing to us: not blocked (any more)
        return user

    async def answer_age(self, user: User, answer: AgeGroup) -> bool:
        """Take the age answer once; False when the user had already answered.

        Written together with the notice it leads to (`notice_shown`, after the notice went
        out), in one transaction; updates of one user are handled one at a time."""
        if user.age_group is not None:
            return False
        if answer not in age_answers(self._pack):
            raise ValueError(f"answer {answer} is not offered by this pack")
        user.age_group = answer
        user.age_answered_at = self._clock.now()
        return True

    async def notice_shown(self, user: User) -> None:
        user.notice_version = self._pack.policy.version
        user.notice_shown_at = self._clock.now()

    async def policy_update_shown(self, user: User) -> None:
        """The user is about to be told of a new policy version: recorded and committed first,
        before the messages go out, so they are told once even if a send fails."""
        await self.notice_shown(user)
        await self._repo.commit()

    def notice_due(self, user: User) -> bool:
        return user.notice_version != self._pack.policy.version

    async def set_language(self, user: User, language: str) -> None:
        user.language = language

    async def consent_status(self, user: User) -> ConsentStatus:
        if not needs_guardian(user.age_group, self._pack):
            return ConsentStatus(locked=False, confirmation=None)
        confirmation = await self._repo.guardians.latest_confirmation(user.id)
        return ConsentStatus(locked=confirmation is None, confirmation=confirmation)

    async def waiting_link(self, minor: User) -> WaitingLink | None:
        """The minor's link still waiting for the representative, if any. Nothing changes: a
        refused grant shows it instead of replacing it (a link already sent stays valid)."""
        link = await self._repo.guardians.open_link(minor.id, now=self._clock.now())
        return None if link is None else WaitingLink(link.created_at, link.expires_at)

    async def new_guardian_link(self, minor: User) -> GuardianInvite:
        """A fresh single-use link payload for the minor's representative; older ones lapse.
        Only the minor's explicit request for a new link (and the first age answer) calls it."""
        token = secrets.token_urlsafe(24)
        now = self._clock.now()
        replaced = await self._repo.guardians.expire_open_links(minor.id, now=now) > 0
        await self._repo.guardians.add_link(
            token_hash=hash_token(token),
            minor_id=minor.id,
            created_at=now,
            expires_at=now + GUARDIAN_LINK_TTL,
        )
        # Committed before the link is sent: the representative may open it at once, and it
        # must be there to be found (and the older links lapsed) by then.
        await self._repo.commit()
        return GuardianInvite(
            payload=GUARDIAN_PAYLOAD_PREFIX + token,
            expires_at=now + GUARDIAN_LINK_TTL,
            replaced=replaced,
        )

    async def check_link(self, token: str, opener_id: int) -> LinkCheck:
        """What opening a representative's link by `opener_id` would mean, changing nothing."""
        return await self._check(
            await self._repo.guardians.link_by_hash(hash_token(token)), opener_id
        )

    async def check_link_id(self, link_id: int, opener_id: int) -> LinkCheck:
        return await self._check(await self._repo.guardians.link_by_id(link_id), opener_id)

    async def _check(self, link: GuardianLink | None, opener_id: int) -> LinkCheck:
        if link is None:
            return LinkCheck(problem=LinkProblem.UNKNOWN)
        if link.minor_id == opener_id:
            return LinkCheck(problem=LinkProblem.OWN)
        if link.used_at is not None:
            return LinkCheck(problem=LinkProblem.USED)
        if link.expires_at <= self._clock.now():
            return LinkCheck(problem=LinkProblem.EXPIRED)
        opener = await self._repo.users.get(opener_id)
        if opener is not None and needs_guardian(opener.age_group, self._pack):
            return LinkCheck(problem=LinkProblem.GUARDIAN_IS_MINOR)
        minor = await self._repo.users.get(link.minor_id)
        if minor is None:
            return LinkCheck(problem=LinkProblem.UNKNOWN)
        return LinkCheck(link_id=link.id, minor=minor)

    async def confirm_guardian(self, link_id: int, guardian: Profile) -> LinkCheck:
        """Record the representative's confirmation against the minor; the link is spent."""
        check = await self.check_link_id(link_id, guardian.id)
        if check.problem is not None or check.minor is None:
            return check
        now = self._clock.now()
        if not await self._repo.guardians.claim_link(link_id, used_by=guardian.id, now=now):
            return LinkCheck(problem=LinkProblem.USED)  # nothing written yet
        user = await self._upsert(guardian, await self._repo.users.get(guardian.id))
        if user.age_group is None:
            # The representative has just stated they are of age: that is their age answer.
            user.age_group = AgeGroup.ADULT
            user.age_answered_at = now
        await self._repo.guardians.add_confirmation(
            minor_id=check.minor.id,
            guardian_id=guardian.id,
            link_id=link_id,
            now=now,
            policy_version=self._pack.policy.version,
        )
        mt = translator(check.minor.language)
        told = mt("guardian.minor_told", when=fmt_datetime(now, mt, self._pack.zone))
        await self._repo.outbox.add(
            kind=OutboxKind.TO_USER, user_id=check.minor.id, text=told, now=now
        )
        # Committed before the representative is told "recorded at T": their confirmation is
        # the minor's consent record, evidence as the ledger is (see Consents.set).
        await self._repo.commit()
        return check
