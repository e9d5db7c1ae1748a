"""A webhook system's callback (`POST /systems/{system_id}/callback` on the bot's web server):
the result of a job it accepted with a 202, signed like the job (`X-Privacy-Desk-Signature`,
HMAC-SHA256 of the exact body under the system's secret).

    {"job": 17, "status": "done", "counts": {...}, "data": {...}}
    {"job": 17, "status": "failed", "reason": "account_locked"}

Answers: 404 an unknown system or job; 401 a missing or wrong signature; 400 a body that is
not such an object; 409 a job of another system, or one that is not waiting for its result;
200 done (a replayed "done" for a job already done: 200 again, nothing changes). Nothing
changes in the database unless the answer is 200. "failed" sends the job again after a backoff
(the worker retries it), or, past `give_up_after` attempts, shows it to staff as failed.
The service's `reason` is kept only when it is a short code (letters, digits, `_ - .`): a free
text could carry personal data, and the reason is shown to staff and logged.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import Clock
from bot.core.systems import System, SystemKind
from bot.delivery.systems.webhook import parse_result, signed
from bot.delivery.systems.worker import MAX_ATTEMPTS, backoff
from bot.domain.systems import done_json
from storage.enums import JobStatus, OutboxKind
from storage.repositories import Repositories

log = logging.getLogger(__name__)

MAX_CALLBACK = 1024 * 1024  # bytes: a bigger callback is refused (413)
_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Endpoint:
    """A connected webhook system as its callback sees it: the system and its secret."""

    system: System
    secret: str


@dataclass(frozen=True)
class Answer:
    status: int
    text: str


class WebhookCallbacks:
    """What the web server needs of the webhook systems (`Served.callbacks`): `receive` checks
    one callback and records it in one transaction."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        endpoints: Mapping[str, Endpoint],
        *,
        give_up_after: int = MAX_ATTEMPTS,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._endpoints = dict(endpoints)
        self._give_up_after = give_up_after

    def __bool__(self) -> bool:
        return bool(self._endpoints)

    async def receive(self, system_id: str, body: bytes, signature: str | None) -> Answer:
        endpoint = self._endpoints.get(system_id)
        if endpoint is None:
            return Answer(404, "unknown system")
        if not signed(endpoint.secret, body, signature):
            log.warning("Callback of system %s refused: bad signature", system_id)
            return Answer(401, "bad signature")
        try:
            payload = json.loads(body)
        except ValueError:
            return Answer(400, "not JSON")
        job_id = payload.get("job") if isinstance(payload, dict) else None
        status = payload.get("status") if isinstance(payload, dict) else None
        if type(job_id) is not int or status not in ("done", "failed"):
            return Answer(400, 'expected {"job": <id>, "status": "done" | "failed"}')
        async with self._sessions() as session:
            repo = Repositories(session)
            answer = await self._record(repo, endpoint.system, job_id, payload)
            if answer.status == 200:
                await repo.commit()
        log.info("Callback of system %s for job %s: %s", system_id, job_id, answer.status)
        return answer

    async def _record(
        self, repo: Repositories, system: System, job_id: int, payload: dict[str, object]
    ) -> Answer:
        job = await repo.jobs.get(job_id)
        if job is None:
            return Answer(404, "unknown job")
        if job.system_id != system.id:
            return Answer(409, "a job of another system")
        if job.status == JobStatus.DONE and payload["status"] == "done":
            return Answer(200, "already done")
        if job.status not in (JobStatus.WAITING, JobStatus.RUNNING):
            return Answer(409, "the job is not waiting for a result")
        now = self._clock.now()
        if payload["status"] == "done":
            done = parse_result(system, job.action, payload)
            if isinstance(done, str):
                return Answer(400, done)
            moved = await repo.jobs.called_back(job, now, done.counts, done_json(done))
        else:
            reason = payload.get("reason")
            code = reason if isinstance(reason, str) and _CODE.match(reason) else None
            error = "the service reported a failure" + (f" ({code})" if code else "")
            give_up = job.attempts >= self._give_up_after
            when = now + backoff(job.attempts)
            moved = await repo.jobs.called_back_failed(job, when, error, give_up=give_up)
        if not moved:
            return Answer(409, "the job moved meanwhile")
        if job.request_id is not None:  # the card's checklist shows the system's line anew
            await repo.outbox.add(kind=OutboxKind.CARD_EDIT, request_id=job.request_id, now=now)
        return Answer(200, "recorded")


def webhook_callbacks(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    systems: list[System],
    environ: Mapping[str, str],
) -> WebhookCallbacks | None:
    """The callbacks of the webhook systems whose URL and secret are set in `environ` (the
    connected ones), None when there is none."""
    endpoints = {
        system.id: Endpoint(system, environ[system.secret_env])
        for system in systems
        if system.kind is SystemKind.WEBHOOK
        and system.url_env
        and system.secret_env
        and environ.get(system.url_env)
        and environ.get(system.secret_env)
    }
    return WebhookCallbacks(sessions, clock, endpoints) if endpoints else None
