"""Filing a request: the one place a request row and its card are created, for requests users
file and for tasks the bot files itself (a withdrawal that must reach the data)."""

from __future__ import annotations

import json
from datetime import datetime

from bot.core.deadlines import request_due
from bot.core.policy import PolicyPack, RequestType
from storage.enums import OutboxKind, RequestStatus
from storage.models import Request
from storage.repositories import Repositories


def needs_phone(pack: PolicyPack, kind: RequestType) -> bool:
    return kind in pack.phone_verified


async def add_request(
    repo: Repositories,
    pack: PolicyPack,
    user_id: int | None,
    kind: RequestType,
    answers: dict[str, str],
    now: datetime,
    *,
    verification: str | None = None,
    queued_at: datetime | None = None,
) -> Request:
    """A new request with the pack's due date (its term runs from `now`, when it was received)
    and its card queued (at `queued_at`, by default `now`); the caller commits. `user_id` None
    and a `verification` of its own: a request staff registered that came outside the bot
    from someone who does not use it (bot.domain.desk_more)."""
    if verification is None:
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
    await repo.outbox.add(kind=OutboxKind.CARD, request_id=request.id, now=queued_at or now)
    return request
