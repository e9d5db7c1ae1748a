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
