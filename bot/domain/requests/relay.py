"""What is said about a request after it is filed, both ways: staff replies, templates and
files for the user; the user's answers, follow-ups and files for staff (an answer to a
clarification restarts or resumes the term); and what the user is told of each staff step.
`Desk` (the decisions on the card) builds on it."""

from __future__ import annotations

import json
from datetime import datetime
from html import escape

from bot.core.clock import Clock
from bot.core.deadlines import request_due
from bot.core.policy import ClarifyRule, PolicyPack
from bot.domain.attachments import Attachment
from bot.domain.requests.notices import staff_file_caption, user_notice
from bot.domain.templates import REQUIRED, render
from storage.enums import MessageKind, OutboxKind, RequestStatus
from storage.models import AnswerTemplate, Request
from storage.repositories import Repositories


class Relay:
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
        return request_due(self._pack, kind, start)

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
        await self._received()

    async def user_attachment(
        self, request: Request, file: Attachment, chat_id: int, message_id: int, caption: str | None
    ) -> None:
        await self._from_user(request, self._clock.now())
        await self._attach(request, file, chat_id, message_id, caption)
        await self._received()

    async def _received(self) -> None:
        """What the person sent on a request is committed before they are told it was passed
        on (and, after a clarification, of the new due date): a failed or lost confirmation
        must not undo an answer staff are waiting for."""
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
        payload = {
            "attachment": attachment.id,
            "caption": staff_file_caption(request, user, caption),
        }
        await self._repo.outbox.add(
            kind=OutboxKind.COPY_USER,
            user_id=user.id,
            request_id=request.id,
            text=json.dumps(payload, ensure_ascii=False),
            now=now,
            confirm_message_id=confirm_message_id,
        )

    async def _notify_user(
        self, request: Request, event: str, *, reason: str, confirm_message_id: int | None = None
    ) -> None:
        user = await self._repo.users.get(request.user_id)
        if user is None:
            return
        text = user_notice(request, user, event, reason, self._pack)
        await self._repo.outbox.add(
            kind=OutboxKind.TO_USER,
            user_id=user.id,
            request_id=request.id,
            text=text,
            now=self._clock.now(),
            confirm_message_id=confirm_message_id,
        )
