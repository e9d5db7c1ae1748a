"""Carrying a request out in the operator's systems: what one job asks of a system (`Work`),
what a system answers (`Done`, `Accepted`, `Failed`) and what every connector offers
(`Connector`). The connectors themselves (sql, webhook, manual) and the worker that runs the
jobs are `bot.delivery.systems`'s; the pack's description of the systems is `bot.core.systems`.

Every action is idempotent: a job cut by a crash runs again, and an erasure or a correction
run twice changes nothing the second time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot.core.law import RequestType
from bot.core.systems import System

# The request types carried out in the operator's systems (portability collects like access).
CARRIED_OUT = frozenset(
    {
        RequestType.ACCESS,
        RequestType.PORTABILITY,
        RequestType.ERASURE,
        RequestType.RECTIFICATION,
        RequestType.RESTRICTION,
    }
)
COLLECTS = frozenset({RequestType.ACCESS, RequestType.PORTABILITY})


@dataclass(frozen=True)
class Subject:
    """Who the job is about: their Telegram user ID, and the phone the bot verified through
    Telegram's contact button ("+<digits>"), if any."""

    telegram_id: int
    phone: str | None = None


@dataclass(frozen=True)
class Correction:
    field: str  # the bot's field: first_name, last_name, phone
    value: str


@dataclass(frozen=True)
class Work:
    """One job: one request type carried out for one person in one system."""

    job_id: int
    action: RequestType
    subject: Subject
    request_id: int | None = None  # None: a storage-limitation erasure (no request)
    due_at: datetime | None = None
    correction: Correction | None = None  # rectification
    restrict_until: datetime | None = None  # restriction


@dataclass(frozen=True)
class Done:
    """The system did its part. `counts`: rows read or changed per table (per category for a
    webhook); `found` (access): per category id, the records found, each a mapping of field to
    value with its `source` (the table, or the service); `kept`: tables whose rows the law
    keeps (fields pseudonymised, rows kept)."""

    counts: dict[str, int] = field(default_factory=dict)
    found: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    kept: tuple[str, ...] = ()


@dataclass(frozen=True)
class Accepted:
    """A webhook system took the job (202) and will call back on the bot's web server."""


@dataclass(frozen=True)
class Failed:
    """The system could not do its part now: retried with a capped backoff. `reason` is shown
    to staff and logged: it names no credential and no personal value."""

    reason: str


Outcome = Done | Accepted | Failed


class Connector(Protocol):
    """One of the operator's systems, reachable by the bot."""

    @property
    def system(self) -> System: ...

    async def run(self, work: Work) -> Outcome:
        """Carry `work` out (SQL: in one transaction; access: read-only)."""
        ...

    async def check(self) -> list[str]:
        """What is wrong with the system as the pack describes it (missing tables or columns,
        an identity column without an index, an endpoint that does not answer): one line per
        problem, none when it validates."""
        ...

    async def dry_run(self, subject: Subject) -> list[str]:
        """What access would read and erasure would change for `subject` (row counts per
        table), changing nothing: one line each."""
        ...

    async def close(self) -> None: ...


def done_json(done: Done) -> str | None:
    """What a job stores of a `Done` (sealed under the person's key): the records found and the
    tables whose rows the law keeps; None when there is nothing to keep (no access data)."""
    if not done.found and not done.kept:
        return None
    return json.dumps({"found": done.found, "kept": list(done.kept)}, ensure_ascii=False)


def stored_done(data: str | None, counts: str | None) -> Done:
    """A job's stored result back as a `Done` (the data may have been purged: then only the
    counts remain)."""
    parsed = json.loads(data) if data else {}
    return Done(
        counts=json.loads(counts) if counts else {},
        found=parsed.get("found", {}),
        kept=tuple(parsed.get("kept", ())),
    )
