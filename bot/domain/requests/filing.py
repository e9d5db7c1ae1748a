"""Filing a request: the one place a request row and its card are created, for requests users
file and for tasks the bot files itself (a withdrawal that must reach the data)."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum

from bot.core.deadlines import extension_months, request_due
from bot.core.policy import PolicyPack, RequestType
from bot.domain.requests.rules import extend_by
from storage.enums import OPEN, MessageKind, OutboxKind, RequestStatus
from storage.models import Request
from storage.repositories import Repositories


class NoExtension(StrEnum):
    """Why a request's term cannot be extended (GDPR art. 12(3))."""

    CLOSED = "closed"
    UNAVAILABLE = "unavailable"  # the pack's law gives no extension (Law 99-Z)
    ALREADY = "already"  # once per request
    LATE = "late"  # only within the first term from receipt, however long it was paused


async def extension_refusal(
    repo: Repositories, pack: PolicyPack, request: Request, now: datetime
) -> NoExtension | None:
    """Why this request cannot be extended now, or None when it can."""
    if request.status not in OPEN:
        return NoExtension.CLOSED
    if extension_months(pack, request.type) == 0:
        return NoExtension.UNAVAILABLE
    if await repo.requests.said(request.id, MessageKind.EXTENSION):
        return NoExtension.ALREADY
    if now > extend_by(pack, request):
        return NoExtension.LATE
    return None


def needs_phone(pack: PolicyPack, kind: RequestType) -> bool:
    return kind in pack.phone_verified


async def add_request(
    repo: Repositories,
    pack: PolicyPack,
    user_id: int,
    kind: RequestType,
    answers: dict[str, str],
    now: datetime,
) -> Request:
    """A new request with the pack's due date and its card queued; the caller commits."""
    verification = "telegram_id+phone" if needs_phone(pack, kind) else "telegram_id"
    request = await repo.requests.add(
        user_id=user_id,
        type=kind,
        details=json.dumps(answers, ensure_ascii=False),
        status=RequestStatus.RECEIVED,
        verification=verification,
        received_at=now,
        due_at=request_due(pack, kind, now),
    )
    await repo.outbox.add(kind=OutboxKind.CARD, request_id=request.id, now=now)
    return request
