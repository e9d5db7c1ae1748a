"""The lifecycle of a rights request: filing it (with the files sent while filing) and what
staff decide from its card, within the limits of `rules`; what is said about it afterwards, both
ways, is `relay`'s.

Every change writes the request, what was said and the messages to deliver (outbox) in the
update's unit of work; the outbox worker delivers them once it is committed. Who did what is in
the audit log, written by the staff gate every staff action passes first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

from aiogram import Bot

from bot.core.policy import ClarifyRule, RequestType
from bot.domain.erasure import ErasureService
from bot.domain.requests.catalogue import CORRECTABLE, details_of, file_of, normalize_phone
from bot.domain.requests.checklist import Checklist, Effect, RequestOutcome
from bot.domain.requests.filing import add_request
from bot.domain.requests.rules import (
    DeskRule,
    NoExtension,
    beyond_agents,
    clarifications,
    extended_due,
    extension_refusal,
    refusal_kind,
)
from storage.enums import DECIDABLE, OPEN, MessageKind, OutboxKind, RequestStatus
from storage.models import Request, User
from storage.repositories import Repositories


@dataclass(frozen=True)
class ClarifyEffect:
    """What a clarification does to the due date, shown to staff before they confirm."""

    rule: ClarifyRule
    due: datetime  # the due date now
    if_answered_now: datetime  # the due date if the user answered at once


class Desk(Checklist):
    """The lifecycle of requests: filing, and what staff decide on the card (what is said
    about a request afterwards, both ways, is `Relay`'s; a request carried out in the operator's
    systems, `Checklist`'s)."""

    async def verify_phone(self, user: User, phone: str) -> None:
        user.phone = normalize_phone(phone)
        user.phone_verified_at = self._clock.now()

    async def file(
        self,
        user: User,
        kind: RequestType,
        answers: dict[str, str],
        files: Sequence[Mapping[str, Any]] = (),
    ) -> Request:
        """Store the request and queue its card (then the files sent while filing, as kept by
        `kept_file`), before the user is told anything."""
        request = await self._file(user, kind, answers, files)
        # Committed here, not by the update: the person is told the number and the due date
        # next, and the term runs from this moment; they must never hold a number the register
        # does not have. (The commit also wakes the outbox for the card.)
        await self._repo.commit()
        return request

    async def _file(
        self,
        user: User,
        kind: RequestType,
        answers: dict[str, str],
        files: Sequence[Mapping[str, Any]] = (),
    ) -> Request:
        request = await add_request(self._repo, self._pack, user.id, kind, answers, self.now())
        for kept in files:
            await self._attach(
                request, file_of(kept), kept["chat"], kept["message"], kept["caption"]
            )
        return request

    async def open_of_type(self, user_id: int, kind: RequestType) -> Request | None:
        """An open request of this type: a second one shows it instead of filing a duplicate."""
        return await self._repo.requests.open_of_type(user_id, kind, OPEN)

    async def remember(self, chat_id: int, message_id: int, request: Request) -> None:
        """A message about the request in the user's chat: a reply to it belongs to the request."""
        await self._repo.requests.link(chat_id, message_id, request.id)
        # Committed now: more messages may follow in this update, and a failed one must not
        # undo the link of a message the person already has.
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
        allowed_from: frozenset[RequestStatus] = DECIDABLE,
        say: str | None = None,
        kind: str | None = None,
        notify: str,
        effect: Effect | None = None,
        **values: object,
    ) -> RequestOutcome:
        """Compare-and-set on the status the staff member saw (and on the due date when the
        change moves it): of two decisions taken at once, one wins; the other gets DECIDED and
        `request` shows who decided."""
        seen = RequestStatus(request.status)
        if seen not in allowed_from:
            return RequestOutcome.CLOSED
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
            return RequestOutcome.DECIDED
        await self._repo.requests.get(request.id)
        for name, value in values.items():  # through the ORM: personal fields are sealed
            setattr(request, name, value)
        if effect is not None:
            await effect()
        if say is not None and kind is not None:
            await self._repo.requests.say(request.id, now, "staff", kind, say, staff_id)
        await self._notify_user(request, notify, reason=escape(say or ""))
        await self._repo.outbox.add(kind=OutboxKind.CARD_EDIT, request_id=request.id, now=now)
        await self._decided()
        return RequestOutcome.OK

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

    async def erase(
        self, request: Request, staff_id: int, erasure: ErasureService, bot: Bot
    ) -> RequestOutcome:
        """Done on an erasure the operator's systems do not carry out (the card's button, the
        desk app): the person's data is erased now, in the erasure's own transaction, with the
        decision a compare-and-set inside it. DECIDED when someone decided first (the request,
        read again, shows who)."""
        key = await erasure.execute(
            bot,
            request.user_id,
            cause=f"request {request.id}",
            notice="requests.erased",
            claim=self.erasure_claim(request, staff_id),
        )
        if key is not None:
            return RequestOutcome.OK
        await self._repo.requests.get(request.id)  # refreshed in place, if still there
        return RequestOutcome.DECIDED

    async def take(self, request: Request, staff_id: int) -> RequestOutcome:
        return await self._staff_change(
            request,
            staff_id,
            RequestStatus.IN_PROGRESS,
            allowed_from=frozenset({RequestStatus.RECEIVED}),
            notify="taken",
        )

    async def complete(self, request: Request, staff_id: int) -> RequestOutcome:
        event = "done_withdrawal" if request.type == RequestType.WITHDRAWAL else "done"
        return await self._staff_change(request, staff_id, RequestStatus.DONE, notify=event)

    async def done(self, request: Request, staff_id: int) -> RequestOutcome:
        """ "Done" on the card: a correction is applied, a request the operator's systems carry
        out is handed to them, anything else completed. (An erasure without systems is done by
        the erasure, a restriction asks until when first.)"""
        if request.type == RequestType.RECTIFICATION:
            return await self.correct(request, staff_id)
        if self.carried_out(request):
            return await self.carry_out(request, staff_id)
        return await self.complete(request, staff_id)

    async def correct(self, request: Request, staff_id: int) -> RequestOutcome:
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

        if self.carried_out(request):
            return await self.carry_out(request, staff_id, effect=apply)
        return await self._staff_change(
            request, staff_id, RequestStatus.DONE, notify="done", effect=apply
        )

    async def restrict(self, request: Request, staff_id: int, until: datetime) -> RequestOutcome:
        """Approve a restriction: until `until`, nothing but storage reaches the user."""

        async def apply() -> None:
            user = await self._repo.users.get(request.user_id)
            if user is not None:
                user.restricted_until = until

        if self.carried_out(request):
            return await self.carry_out(request, staff_id, effect=apply, hold_until=until)
        return await self._staff_change(
            request,
            staff_id,
            RequestStatus.DONE,
            notify="restricted",
            effect=apply,
            hold_until=until,
        )

    async def refresh_card(self, request: Request) -> None:
        """An older card's button that no longer exists was pressed (Refuse without a ground,
        Unfounded where the pack's law has no such ground): the card is rendered again with
        today's buttons. Nothing about the request changes."""
        now = self._clock.now()
        await self._repo.outbox.add(kind=OutboxKind.CARD_EDIT, request_id=request.id, now=now)
        await self._repo.commit()

    async def lift(self, request: Request, staff_id: int) -> RequestOutcome:
        """Staff lift an approved restriction before its date."""
        if request.type != RequestType.RESTRICTION or request.hold_until is None:
            return RequestOutcome.CLOSED
        user = await self._repo.users.get(request.user_id)
        if user is not None:
            user.restricted_until = None
        request.hold_until = None
        request.handled_by, request.handled_at = staff_id, self._clock.now()
        await self._notify_user(request, "lifted", reason="")
        await self._repo.outbox.add(
            kind=OutboxKind.CARD_EDIT, request_id=request.id, now=self._clock.now()
        )
        await self._decided()
        return RequestOutcome.OK

    async def object_to_marketing(self, user: User, answers: dict[str, str]) -> Request:
        """An objection to direct marketing is absolute: it takes effect at once and is
        recorded as done; staff see the card for information."""
        request = await self._file(user, RequestType.OBJECTION, answers)
        now = self._clock.now()
        request.status = RequestStatus.DONE
        request.closed_at = now
        # Filed and done in one commit, before the person is told it took effect (as file());
        # the card the commit wakes the outbox for is rendered done.
        await self._repo.commit()
        return request

    async def refuse(
        self, request: Request, staff_id: int, reason: str, ground_id: str
    ) -> RequestOutcome | DeskRule:
        """A refusal on a ground the pack's law gives for the request's type, with staff's
        explanation: the user is told the ground, its article and where to complain (GDPR art.
        12(4); 99-Z art. 15). Any other ground (forged, another law's) changes nothing."""
        if (ground := self._pack.ground(request.type, ground_id)) is None:
            return DeskRule.NO_GROUND
        return await self._staff_change(
            request,
            staff_id,
            RequestStatus.REFUSED,
            say=reason,
            kind=refusal_kind(ground),
            notify="refused",
            reason=reason,
            refusal_ground=ground.id,
        )

    async def question(self, request: Request, staff_id: int, question: str) -> RequestOutcome:
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

    async def clarify(
        self, request: Request, staff_id: int, text: str, *, beyond: str | None = None
    ) -> RequestOutcome | DeskRule:
        """A clarification of identity or scope, its text shown to the user: the due date
        restarts from the answer (99-Z seed ch. 7) or pauses until it (GDPR). An agent may ask
        the pack's `agent_clarifications` per request; a further one needs `beyond`, a DPO's
        reason (the staff gate passes one only from a DPO), recorded and shown on the card."""
        over = beyond_agents(self._pack, await clarifications(self._repo, request))
        if over and not beyond:
            return DeskRule.CLARIFY_LIMIT

        async def record() -> None:
            if over and beyond:
                kind = MessageKind.CLARIFY_BEYOND
                await self._repo.requests.say(
                    request.id, self.now(), "staff", kind, beyond, staff_id
                )

        rule = self._pack.requests.clarify
        return await self._staff_change(
            request,
            staff_id,
            RequestStatus.WAITING,
            say=text,
            kind=MessageKind.CLARIFY,
            notify=f"clarify_{rule}",
            effect=record,
        )

    async def extension_refusal(self, request: Request) -> NoExtension | None:
        return await extension_refusal(self._repo, self._pack, request, self.now())

    async def extend(
        self, request: Request, staff_id: int, reason: str
    ) -> RequestOutcome | NoExtension:
        """Up to two further months, once, within the first term from receipt, with a reason
        (`rules.extended_due`); the user is told the new date and the reason at once."""
        if (refusal := await self.extension_refusal(request)) is not None:
            return refusal
        new_due = extended_due(self._pack, request)
        return await self._staff_change(
            request,
            staff_id,
            RequestStatus(request.status),
            say=reason,
            kind=MessageKind.EXTENSION,
            notify="extended",
            due_at=new_due,
        )

    async def block(
        self, request: Request, staff_id: int, until: datetime, reason: str
    ) -> RequestOutcome:
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
