"""What the desk app shows of requests (bot.service.desk_app): the table (filters, search by
number or user ID, sorted by due date, paged, counts per filter) and a request's timeline
(filed, verified, what was said both ways, staff actions from the audit log, attachments by
kind and size only). Reads only; what staff decide goes through `Desk`, as on the card."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.core.clock import Clock
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack, RequestType
from bot.domain.attachments import megabytes
from storage.enums import OPEN, RequestStatus
from storage.models import Request
from storage.repositories import Repositories
from storage.repositories.desk_queries import DeskQueries, RequestFilter, Row

PAGE_SIZE = 25
MAX_DUE_WITHIN = 3650
MAX_PAGE = 100_000
MAX_NUMBER = 2**53  # a request number or a Telegram user ID fits in JSON's integers


class BadQuery(ValueError):
    """A filter that does not parse: the call gets 400, nothing is read."""


@dataclass(frozen=True)
class Query:
    status: str = ""  # a RequestStatus value, "all", or "" / "open": every open one
    kind: str = ""
    overdue: bool = False
    due_within: int | None = None
    mine: bool = False
    number: int | None = None
    page: int = 0


def _int(value: str, name: str, top: int) -> int:
    if not value.isdigit() or int(value) > top:
        raise BadQuery(name)
    return int(value)


def parse_query(params: Mapping[str, str], pack: PolicyPack) -> Query:
    """The table's query string: ?status=&type=&overdue=1&due_within=N&mine=1&q=&page=0."""
    status = params.get("status", "")
    if status and status not in ("open", "all") and status not in set(RequestStatus):
        raise BadQuery("status")
    kind = params.get("type", "")
    if kind and kind not in {str(k) for k in RequestType}:
        raise BadQuery("type")
    due = params.get("due_within", "")
    q = params.get("q", "").strip()
    return Query(
        status=status,
        kind=kind,
        overdue=params.get("overdue", "") in ("1", "true"),
        due_within=_int(due, "due_within", MAX_DUE_WITHIN) if due else None,
        mine=params.get("mine", "") in ("1", "true"),
        number=_int(q, "q", MAX_NUMBER) if q else None,
        page=_int(params.get("page", "0") or "0", "page", MAX_PAGE),
    )


@dataclass(frozen=True)
class Listing:
    items: list[Row]
    page: int
    pages: int
    total: int
    counts: dict[str, int]


@dataclass(frozen=True)
class Entry:
    """One line of a request's timeline."""

    at: datetime
    kind: str
    who: str  # user | staff | system
    staff_id: int | None
    text: str


class DeskView:
    def __init__(self, repo: Repositories, clock: Clock, pack: PolicyPack) -> None:
        self._repo = repo
        self._queries = DeskQueries(repo.session)
        self._clock = clock
        self._pack = pack

    async def requests(self, query: Query, staff_id: int) -> Listing:
        now = self._clock.now()
        statuses: tuple[str, ...] = ()
        if query.status in ("", "open"):
            statuses = tuple(str(s) for s in OPEN)
        elif query.status != "all":
            statuses = (query.status,)
        due_before = None if query.due_within is None else now + timedelta(days=query.due_within)
        f = RequestFilter(
            statuses=statuses,
            kind=query.kind or None,
            overdue=query.overdue,
            due_before=due_before,
            due_after=None if due_before is None else now,
            handled_by=staff_id if query.mine else None,
            number=query.number,
        )
        rows, total = await self._queries.page(f, now, query.page * PAGE_SIZE, PAGE_SIZE)
        counts = await self._queries.counts(now, staff_id)
        pages = max(1, -(-total // PAGE_SIZE))
        return Listing(rows, query.page, pages, total, asdict(counts))

    async def timeline(self, request: Request, t: Translator) -> list[Entry]:
        """Everything that happened to the request, oldest first (the systems' checklist lines
        are the caller's: they are rendered as the card renders them)."""
        entries = [
            Entry(request.received_at, "filed", "user", None, t("desk_server.timeline_filed")),
            Entry(
                request.received_at,
                "verified",
                "system",
                None,
                t("desk_server.timeline_verified", how=_verified(request, t)),
            ),
        ]
        for message in await self._repo.requests.messages(request.id):
            who = "staff" if message.author == "staff" else "user"
            entries.append(Entry(message.at, message.kind, who, message.staff_id, message.text))
        for file in await self._queries.attachments(request.id):
            who = "staff" if file.author == "staff" else "user"
            text = t("desk_server.timeline_attachment", kind=file.kind, size=megabytes(file.size))
            entries.append(Entry(file.at, "attachment", who, file.staff_id, text))
        for audit in await self._queries.staff_actions(request.id):
            text = t("desk_server.timeline_staff", action=audit.action)
            entries.append(Entry(audit.at, "staff_action", "staff", audit.actor_id, text))
        # At the same moment, a staff action's audit row comes before what it said.
        entries.sort(key=lambda e: (e.at, e.kind not in ("filed", "verified", "staff_action")))
        return entries


def _verified(request: Request, t: Translator) -> str:
    """How the person's identity was checked, as the card says it (the raw value for a way
    the card has no words for, a request registered by staff, say)."""
    try:
        return t(f"card.verified_{request.verification.replace('+', '_')}")
    except KeyError:
        return request.verification


def row_json(row: Row, t: Translator, now: datetime) -> dict[str, Any]:
    """A table row as the API gives it (IDs, types, statuses, dates: nothing personal)."""
    return {
        "id": row.id,
        "type": row.type,
        "type_label": t(f"rights.{row.type}"),
        "status": row.status,
        "status_label": t(f"desk_server.status_{row.status}"),
        "user_id": row.user_id,
        "received_at": row.received_at.isoformat(),
        "due_at": row.due_at.isoformat(),
        "overdue": row.status in OPEN and row.due_at < now,
        "handled_by": row.handled_by,
    }
