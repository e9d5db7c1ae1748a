"""Rights requests: what each type asks, deadlines, and the lifecycle staff drive from the card.

Every change writes the request, what was said and the messages to deliver (outbox) in one
transaction; the outbox worker delivers them. Who did what is in the audit log, written by the
staff check every action passes first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from html import escape
from typing import Any

from bot.core.clock import Clock
from bot.core.deadlines import add_months, due_at
from bot.core.formatting import complaint_text, fmt_date
from bot.core.i18n import translator
from bot.core.policy import ClarifyRule, LegalBasis, PolicyPack, RequestType
from bot.domain.attachments import Attachment, Kind, fit_caption
from bot.domain.requests.filing import NoExtension, add_request, extension_refusal
from bot.domain.requests.filing import needs_phone as needs_phone  # re-exported for the handlers
from bot.domain.templates import REQUIRED, render
from storage.enums import OPEN, MessageKind, OutboxKind, RequestStatus
from storage.models import AnswerTemplate, Request, User
from storage.repositories import Repositories

MAX_TEXT = 1000
# What staff may write to a user in one message (a reply, a reason, a question): it is sent inside
# a short template, and the whole must fit Telegram's 4096 characters (tests check the margin).
MAX_STAFF_TEXT = 3500
# A reason, question or hold is also shown on the card, next to the user's answers (each at most
# MAX_TEXT): together they must fit one message.
MAX_REASON = 1000

MAX_FLOW_FILES = 10  # files a user may add while filing one request


def kept_file(
    file: Attachment, chat_id: int, message_id: int, caption: str | None
) -> dict[str, Any]:
    """A file sent while filing, as kept in the conversation state until the request is sent."""
    return {
        "kind": file.kind,
        "size": file.size,
        "chat": chat_id,
        "message": message_id,
        "caption": caption or "",
    }


# Request types that go to the admin desk; withdrawal leads to /consents, complaint is information.
FILED = (
    RequestType.ACCESS,
    RequestType.RECTIFICATION,
    RequestType.ERASURE,
    RequestType.RESTRICTION,
    RequestType.OBJECTION,
    RequestType.PORTABILITY,
)


@dataclass(frozen=True)
class Question:
    key: str
    optional: bool = False
    choices: bool = False  # answered with a button (objection: which processing)


QUESTIONS: dict[RequestType, tuple[Question, ...]] = {
    RequestType.ACCESS: (),
    RequestType.PORTABILITY: (),
    RequestType.RECTIFICATION: (Question("field", choices=True), Question("value")),
    RequestType.ERASURE: (Question("reason", optional=True),),
    RequestType.RESTRICTION: (Question("reason", optional=True),),
    RequestType.OBJECTION: (Question("processing", choices=True), Question("reason")),
}


# Data the bot itself holds and can correct; "other" is data kept elsewhere (staff act there).
CORRECTABLE = ("first_name", "last_name", "phone")
FIELD_CHOICES = (*CORRECTABLE, "other")


def objection_choices(pack: PolicyPack) -> list[str]:
    """Processing one can object to: legitimate interests, and direct marketing."""
    ids = [p.id for p in pack.purposes if p.legal_basis is LegalBasis.LEGITIMATE_INTERESTS]
    if pack.marketing is not None:
        ids.append(pack.marketing.purpose)
    return ids


def offered(pack: PolicyPack) -> list[RequestType]:
    return [r for r in pack.rights if r is not RequestType.DISCLOSURES]


def normalize_phone(raw: str) -> str:
    digits = re.sub(r"\D", "", raw)
    return f"+{digits}"


def details_of(request: Request) -> dict[str, str]:
    return dict(json.loads(request.details))


class Outcome(StrEnum):
    OK = "ok"
    CLOSED = "closed"  # the request no longer accepts this action
    DECIDED = "decided"  # another staff member decided it a moment earlier


Effect = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class ClarifyEffect:
    """What a clarification does to the due date, shown to staff before they confirm."""

    rule: ClarifyRule
    due: datetime  # the due date now
    if_answered_now: datetime  # the due date if the user answered at once


class Desk:
    def __init__(self, repo: Repositories, clock: Clock, pack: PolicyPack) -> None:
        self._repo = repo
        self._clock = clock
        self._pack = pack

    def now(self) -> datetime:
        return self._clock.now()

    @property
    def clock(self) -> Clock:
        return self._clock

    def due(self, kind: str, start: datetime) -> datetime:
        deadline = self._pack.deadlines[RequestType(kind)]
        return due_at(start, deadline, self._pack.operator.country, self._pack.zone)

    async def verify_phone(self, user: User, phone: str) -> None:
        user.phone = normalize_phone(phone)
        user.phone_verified_at = self._clock.now()
        await self._repo.commit()

    async def file(
        self,
        user: User,
        kind: RequestType,
        answers: dict[str, str],
        files: Sequence[Mapping[str, Any]] = (),
    ) -> Request:
        """Store the request and queue its card (then the files sent while filing, as kept by
        `kept_file`), before the user is told anything."""
        request = await add_request(self._repo, self._pack, user.id, kind, answers, self.now())
        for kept in files:
            file = Attachment(Kind(kept["kind"]), kept["size"])
            await self._attach(request, file, kept["chat"], kept["message"], kept["caption"])
        await self._repo.commit()
        return request

    async def open_of_type(self, user_id: int, kind: RequestType) -> Request | None:
        """An open request of this type: a second one shows it instead of filing a duplicate."""
        return await self._repo.requests.open_of_type(user_id, kind, OPEN)

    async def remember(self, chat_id: int, message_id: int, request: Request) -> None:
        """A message about the request in the user's chat: a reply to it belongs to the request."""
        await self._repo.requests.link(chat_id, message_id, request.id)
        await self._repo.commit()

    async def frozen_until(self, user_id: int) -> datetime | None:
        """The end of a legal hold on the user's data, if one is in force."""
        return await self._repo.requests.hold_until(user_id, self._clock.now())

    # --- staff actions ---------------------------------------------------------------------

    async def _staff_change(
        self,
        request: Request,
        staff_id: int,
        status: RequestStatus,
        *,
        allowed_from: frozenset[RequestStatus] = OPEN,
        say: str | None = None,
        kind: str | None = None,
        notify: str,
        effect: Effect | None = None,
        **values: object,
    ) -> Outcome:
        """Compare-and-set on the status the staff member saw (and on the due date when the
        change moves it): of two decisions taken at once, one wins; the other gets DECIDED and
        `request` shows who decided."""
        seen = RequestStatus(request.status)
        if seen not in allowed_from:
            return Outcome.CLOSED
        now = self._clock.now()
        closed = {"closed_at": now} if status not in OPEN else {}
        due_seen = request.due_at if "due_at" in values else None
        if not await self._repo.requests.decide(
            request.id,
            seen,
            due_seen=due_seen,
            status=status,
            handled_by=staff_id,
            handled_at=now,
            **closed,
        ):
            await self._repo.requests.get(request.id)  # refreshed: who decided, and how
            return Outcome.DECIDED
        await self._repo.requests.get(request.id)
        for name, value in values.items():  # through the ORM: personal fields are sealed
            setattr(request, name, value)
        if effect is not None:
            await effect()
        if say is not None and kind is not None:
            await self._repo.requests.say(request.id, now, "staff", kind, say, staff_id)
        await self._notify_user(request, notify, reason=escape(say or ""))
        await self._repo.outbox.add(kind=OutboxKind.CARD_EDIT, request_id=request.id, now=now)
        await self._repo.commit()
        return Outcome.OK

    def erasure_claim(
        self, request: Request, staff_id: int
    ) -> Callable[[Repositories], Awaitable[bool]]:
        """Staff completed an erasure request: the decision is a compare-and-set on the status
        they saw, taken inside the erasure's own transaction (ErasureService.execute)."""
        now, request_id, seen = self._clock.now(), request.id, request.status

        async def claim(repo: Repositories) -> bool:
            return await repo.requests.decide(
                request_id,
                seen,
                status=RequestStatus.DONE,
                handled_by=staff_id,
                handled_at=now,
                closed_at=now,
            )

        return claim

    async def take(self, request: Request, staff_id: int) -> Outcome:
        return await self._staff_change(
            request,
            staff_id,
            RequestStatus.IN_PROGRESS,
            allowed_from=frozenset({RequestStatus.RECEIVED}),
            notify="taken",
        )

    async def complete(self, request: Request, staff_id: int) -> Outcome:
        event = "done_withdrawal" if request.type == RequestType.WITHDRAWAL else "done"
        return await self._staff_change(request, staff_id, RequestStatus.DONE, notify=event)

    async def correct(self, request: Request, staff_id: int) -> Outcome:
        """Approve a correction: the new value replaces the old one in the bot's own data.
        The audit log names the field, never a value."""
        answers = details_of(request)
        field = answers.get("field")

        async def apply() -> None:
            user = await self._repo.users.get(request.user_id)
            if user is not None and field in CORRECTABLE and answers.get("value"):
                value = answers["value"]
                setattr(user, field, normalize_phone(value) if field == "phone" else value[:128])
                await self._repo.audit.add(
                    at=self._clock.now(),
                    actor_id=staff_id,
                    action="data.corrected",
                    subject=f"request:{request.id}:{field}",
                    allowed=True,
                )

        return await self._staff_change(
            request, staff_id, RequestStatus.DONE, notify="done", effect=apply
        )

    async def restrict(self, request: Request, staff_id: int, until: datetime) -> Outcome:
        """Approve a restriction: until `until`, nothing but storage reaches the user."""

        async def apply() -> None:
            user = await self._repo.users.get(request.user_id)
            if user is not None:
                user.restricted_until = until

        return await self._staff_change(
            request,
            staff_id,
            RequestStatus.DONE,
            notify="restricted",
            effect=apply,
            hold_until=until,
        )

    async def lift(self, request: Request, staff_id: int) -> Outcome:
        """Staff lift an approved restriction before its date."""
        if request.type != RequestType.RESTRICTION or request.hold_until is None:
            return Outcome.CLOSED
        user = await self._repo.users.get(request.user_id)
        if user is not None:
            user.restricted_until = None
        request.hold_until = None
        request.handled_by, request.handled_at = staff_id, self._clock.now()
        await self._notify_user(request, "lifted", reason="")
        await self._repo.outbox.add(
            kind=OutboxKind.CARD_EDIT, request_id=request.id, now=self._clock.now()
        )
        await self._repo.commit()
        return Outcome.OK

    async def object_to_marketing(self, user: User, answers: dict[str, str]) -> Request:
        """An objection to direct marketing is absolute: it takes effect at once and is
        recorded as done; staff see the card for information."""
        request = await self.file(user, RequestType.OBJECTION, answers)
        now = self._clock.now()
        request.status = RequestStatus.DONE
        request.closed_at = now
        await self._repo.commit()
        return request

    async def refuse(
        self, request: Request, staff_id: int, reason: str, *, unfounded: bool = False
    ) -> Outcome:
        """A refusal with its reason; `unfounded`: manifestly unfounded or excessive (GDPR art.
        12(5)), its own reason. Every refusal tells where to complain (art. 12(4); 99-Z art. 15)."""
        return await self._staff_change(
            request,
            staff_id,
            RequestStatus.REFUSED,
            say=reason,
            kind=MessageKind.REFUSAL_UNFOUNDED if unfounded else MessageKind.REFUSAL,
            notify="refused_unfounded" if unfounded else "refused",
            reason=reason,
        )

    async def question(self, request: Request, staff_id: int, question: str) -> Outcome:
        """A question: the user answers, the due date stays."""
        return await self._staff_change(
            request,
            staff_id,
            RequestStatus.WAITING,
            say=question,
            kind=MessageKind.QUESTION,
            notify="question",
        )

    def clarify_effect(self, request: Request) -> ClarifyEffect:
        rule = self._pack.requests.clarify
        now = self.now()
        if rule is ClarifyRule.RESTART:
            return ClarifyEffect(rule, request.due_at, self.due(request.type, now))
        return ClarifyEffect(rule, request.due_at, request.due_at)

    async def clarify(self, request: Request, staff_id: int, reason: str) -> Outcome:
        """A clarification of identity or scope, with its reason shown to the user: the due date
        restarts from the answer (99-Z seed ch. 7) or pauses until it (GDPR)."""
        rule = self._pack.requests.clarify
        return await self._staff_change(
            request,
            staff_id,
            RequestStatus.WAITING,
            say=reason,
            kind=MessageKind.CLARIFY,
            notify=f"clarify_{rule}",
        )

    async def extension_refusal(self, request: Request) -> NoExtension | None:
        return await extension_refusal(self._repo, self._pack, request, self.now())

    async def extend(self, request: Request, staff_id: int, reason: str) -> Outcome | NoExtension:
        """Up to two further months, once, before the original due date, with a reason; the user
        is told the new date and the reason at once."""
        if (refusal := await self.extension_refusal(request)) is not None:
            return refusal
        new_due = add_months(request.due_at, self._pack.requests.extension_months)
        return await self._staff_change(
            request,
            staff_id,
            RequestStatus(request.status),
            say=reason,
            kind=MessageKind.EXTENSION,
            notify="extended",
            due_at=new_due,
        )

    async def block(self, request: Request, staff_id: int, until: datetime, reason: str) -> Outcome:
        return await self._staff_change(
            request,
            staff_id,
            RequestStatus.BLOCKED,
            say=reason,
            kind=MessageKind.HOLD,
            notify="blocked",
            reason=reason,
            hold_until=until,
        )

    async def staff_reply(
        self, request: Request, staff_id: int, text: str, *, confirm_message_id: int | None = None
    ) -> None:
        """Queue a staff reply for the user; `confirm_message_id` is staff's "queued" notice,
        edited to "sent" (or why not) once the user has it."""
        now = self._clock.now()
        await self._repo.requests.say(request.id, now, "staff", MessageKind.REPLY, text, staff_id)
        await self._notify_user(
            request, "reply", reason=escape(text), confirm_message_id=confirm_message_id
        )
        await self._repo.commit()

    async def send_template(
        self,
        request: Request,
        template: AnswerTemplate,
        staff_id: int,
        *,
        confirm_message_id: int | None = None,
    ) -> None:
        """A template, in the user's language with its placeholders filled, as a reply."""
        user = await self._repo.users.get(request.user_id)
        locale = user.language if user is not None else REQUIRED[0]
        text = render(template, request, locale, self._pack)
        await self.staff_reply(request, staff_id, text, confirm_message_id=confirm_message_id)

    # --- user side -------------------------------------------------------------------------

    async def _from_user(self, request: Request, now: datetime) -> str:
        """While staff wait, what the user sends is the answer; otherwise a follow-up. After a
        question the due date stays; after a clarification it restarts (99-Z seed ch. 7) or
        resumes with the time waited added (GDPR), as the pack says."""
        if request.status != RequestStatus.WAITING:
            return MessageKind.FOLLOWUP
        request.status = RequestStatus.IN_PROGRESS if request.handled_by else RequestStatus.RECEIVED
        asked = await self._repo.requests.last_staff_ask(request.id)
        if asked is not None and asked.kind == MessageKind.CLARIFY:
            if self._pack.requests.clarify is ClarifyRule.RESTART:
                request.due_at = self.due(request.type, now)
            else:  # paused since the clarification was asked
                request.due_at = request.due_at + (now - asked.at)
        await self._repo.outbox.add(kind=OutboxKind.CARD_EDIT, request_id=request.id, now=now)
        return MessageKind.ANSWER

    async def user_message(self, request: Request, text: str) -> None:
        now = self._clock.now()
        kind = await self._from_user(request, now)
        await self._repo.requests.say(request.id, now, "user", kind, text, None)
        await self._repo.outbox.add(
            kind=OutboxKind.TO_STAFF, request_id=request.id, text=text, now=now
        )
        await self._repo.commit()

    async def user_attachment(
        self, request: Request, file: Attachment, chat_id: int, message_id: int, caption: str | None
    ) -> None:
        await self._from_user(request, self._clock.now())
        await self._attach(request, file, chat_id, message_id, caption)
        await self._repo.commit()

    async def _attach(
        self, request: Request, file: Attachment, chat_id: int, message_id: int, caption: str | None
    ) -> None:
        """A user's file: recorded (where, type, size) and queued to be copied under the card."""
        now = self._clock.now()
        attachment = await self._repo.attachments.add(
            request_id=request.id,
            at=now,
            author="user",
            staff_id=None,
            kind=file.kind,
            size=file.size,
            source_chat_id=chat_id,
            source_message_id=message_id,
        )
        payload = {"attachment": attachment.id, "caption": caption or ""}
        await self._repo.outbox.add(
            kind=OutboxKind.COPY_STAFF,
            request_id=request.id,
            text=json.dumps(payload, ensure_ascii=False),
            now=now,
        )

    async def staff_attachment(
        self,
        request: Request,
        staff_id: int,
        file: Attachment,
        chat_id: int,
        message_id: int,
        caption: str | None,
        *,
        confirm_message_id: int | None = None,
    ) -> None:
        """A staff member's file for the user, captioned in the user's language."""
        user = await self._repo.users.get(request.user_id)
        if user is None:
            return
        now = self._clock.now()
        t = translator(user.language)
        header = t("attach.from_staff", id=request.id, type=t(f"rights.{request.type}"))
        attachment = await self._repo.attachments.add(
            request_id=request.id,
            at=now,
            author="staff",
            staff_id=staff_id,
            kind=file.kind,
            size=file.size,
            source_chat_id=chat_id,
            source_message_id=message_id,
        )
        payload = {"attachment": attachment.id, "caption": fit_caption(header, caption)}
        await self._repo.outbox.add(
            kind=OutboxKind.COPY_USER,
            user_id=user.id,
            request_id=request.id,
            text=json.dumps(payload, ensure_ascii=False),
            now=now,
            confirm_message_id=confirm_message_id,
        )
        await self._repo.commit()

    async def _notify_user(
        self, request: Request, event: str, *, reason: str, confirm_message_id: int | None = None
    ) -> None:
        user = await self._repo.users.get(request.user_id)
        if user is None:
            return
        t = translator(user.language)
        purpose = self._pack.purpose(details_of(request).get("purpose", ""))
        text = t(
            f"requests.notify_{event}",
            id=request.id,
            type=t(f"rights.{request.type}"),
            reason=reason,
            due=fmt_date(request.due_at, t, self._pack.zone),
            until=fmt_date(request.hold_until, t, self._pack.zone) if request.hold_until else "",
            complaint=complaint_text(self._pack, t),
            purpose=escape(purpose.title.get(t.locale)) if purpose else "",
        )
        await self._repo.outbox.add(
            kind=OutboxKind.TO_USER,
            user_id=user.id,
            request_id=request.id,
            text=text,
            now=self._clock.now(),
            confirm_message_id=confirm_message_id,
        )
