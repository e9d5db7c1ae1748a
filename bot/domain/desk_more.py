"""The desk app's views beyond the requests table: a person (their requests, consent ledger,
disclosures, legal holds), the breach register with each deadline, the figures (on time and
time to close per type and month, open requests by age, consents granted per purpose and
month), and a request registered by staff that did not come through the bot.

Everything here returns plain dicts of numbers, IDs, ISO dates and translated labels: the page
draws them. Nothing is written but the external request (the caller checks the role and
writes the audit row first)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from bot.core.deadlines import breach_terms
from bot.core.i18n import Translator
from bot.core.law import RequestType
from bot.core.policy import PolicyPack
from bot.domain.breaches import Breaches
from bot.domain.requests.filing import add_request
from bot.domain.stats import Month, Period, month_of
from storage.enums import OPEN, CampaignStatus, RequestStatus
from storage.models import Request
from storage.repositories import Repositories
from storage.repositories.desk_more import DeskMoreRepository

AGE_BUCKETS = ((0, 7, "0-7"), (8, 14, "8-14"), (15, 30, "15-30"), (31, None, "30+"))
CHANNELS = ("email", "post", "in_person", "other")
EXTERNAL = "external"  # requests.verification of a request registered by staff
MAX_TEXT = 4000
MAX_IDENTITY = 500


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def month_key(month: Month) -> str:
    return f"{month[0]:04d}-{month[1]:02d}"


def _more(repo: Repositories) -> DeskMoreRepository:
    return DeskMoreRepository(repo.session)


# --- a person ---------------------------------------------------------------------------------


def _request_row(request: Request, t: Translator, now: datetime) -> dict[str, object]:
    return {
        "id": request.id,
        "type": request.type,
        "type_label": t(f"rights.{request.type}"),
        "status": request.status,
        "status_label": t(f"requests.status_{request.status}"),
        "received_at": iso(request.received_at),
        "due_at": iso(request.due_at),
        "closed_at": iso(request.closed_at),
        "overdue": request.status in OPEN and request.due_at < now,
        "external": request.verification == EXTERNAL,
    }


def _holds(requests: list[Request], now: datetime) -> list[dict[str, object]]:
    """Legal holds (blocked, kept by law until a date) and restrictions still in force."""
    return [
        {
            "request_id": r.id,
            "kind": "restriction" if r.type == RequestType.RESTRICTION else "hold",
            "until": iso(r.hold_until),
            "reason": r.reason or "",
        }
        for r in requests
        if r.hold_until is not None
        and r.hold_until > now
        and (r.status == RequestStatus.BLOCKED or r.type == RequestType.RESTRICTION)
    ]


async def person(
    repo: Repositories, pack: PolicyPack, t: Translator, user_id: int, now: datetime
) -> dict[str, object] | None:
    """A person's requests, consents (current and the ledger), disclosures and holds; None
    when the bot has no such user (never was, or erased)."""
    user = await repo.users.get(user_id)
    if user is None:
        return None
    requests = await repo.requests.of_user(user_id)
    requests.sort(key=lambda r: r.id, reverse=True)
    states = await _more(repo).consent_states(user_id)
    ledger = await repo.consents.ledger_of(user_id)
    disclosures = await repo.disclosures.of_user(user_id)

    def title(purpose_id: str) -> str:
        found = pack.purpose(purpose_id)
        return (found.title.get(t.locale) if found else None) or purpose_id

    name = " ".join(n for n in (user.first_name, user.last_name) if n)
    return {
        "user": {
            "id": user.id,
            "name": name,
            "username": user.username or "",
            "language": user.language,
            "joined_at": iso(user.created_at),
            "last_seen_at": iso(user.last_seen_at),
            "restricted_until": iso(user.restricted_until),
            "blocked_bot": bool(user.blocked_bot),
        },
        "requests": [_request_row(r, t, now) for r in requests],
        "consents": [
            {
                "purpose": p,
                "label": title(p),
                "granted": g,
                "policy_version": v,
                "updated_at": iso(at),
            }
            for p, g, v, at in states
        ],
        "ledger": [
            {
                "purpose": p,
                "label": title(p),
                "granted": g,
                "at": iso(at),
                "policy_version": v,
                "source": s,
            }
            for p, g, at, v, s, _ in ledger
        ],
        "disclosures": [
            {
                "at": iso(d.at),
                "recipient": d.recipient,
                "data": d.data,
                "legal_basis": d.legal_basis,
                "staff_id": d.staff_id,
            }
            for d in disclosures
        ],
        "holds": _holds(requests, now),
    }


# --- the breach register ----------------------------------------------------------------------


def _state(done: datetime | None, due: datetime | None, now: datetime) -> str:
    if done is not None:
        return "done"
    return "overdue" if due is not None and due < now else "pending"


async def breach_register(
    repo: Repositories, pack: PolicyPack, t: Translator, now: datetime
) -> dict[str, object]:
    """Every breach, newest first, with each authority's deadline and mark and the users'."""
    service = Breaches(repo, _FixedClock(now), pack)
    items = []
    for breach in sorted(await repo.breaches.every(), key=lambda b: b.id, reverse=True):
        notified = await service.notified(breach)
        authorities = [
            {
                "law": law.id,
                "name": law.name.get(t.locale) or law.id,
                "due_at": iso(due),
                "notified_at": iso(notified.get(law.id)),
                "state": _state(notified.get(law.id), due, now),
            }
            for law, due in breach_terms(pack, breach.known_at)
        ]
        recipients = told = 0
        users_state = _state(breach.users_told_at, breach.users_due_at, now)
        if breach.campaign_id is not None:
            recipients, told = await _more(repo).deliveries(breach.campaign_id)
            campaign = await repo.campaigns.get(breach.campaign_id)
            if campaign is not None and campaign.status == CampaignStatus.SENDING:
                users_state = "telling"
        items.append(
            {
                "id": breach.id,
                "known_at": iso(breach.known_at),
                "created_at": iso(breach.created_at),
                "what": breach.what,
                "categories": breach.categories,
                "affected": breach.affected,
                "people": breach.people or "",
                "records": breach.records or "",
                "authority_due_at": iso(breach.authority_due_at),
                "authorities": authorities,
                "state": "done"
                if all(a["state"] == "done" for a in authorities)
                else (
                    "overdue" if any(a["state"] == "overdue" for a in authorities) else "pending"
                ),
                "users": {
                    "due_at": iso(breach.users_due_at),
                    "started_at": iso(breach.users_told_at),
                    "state": users_state,
                    "recipients": recipients,
                    "told": told,
                },
            }
        )
    return {"items": items}


@dataclass(frozen=True)
class _FixedClock:
    at: datetime

    def now(self) -> datetime:
        return self.at


# --- figures ----------------------------------------------------------------------------------


def age_bucket(received_at: datetime, now: datetime) -> str:
    days = (now - received_at).days
    for low, high, name in AGE_BUCKETS:
        if days >= low and (high is None or days <= high):
            return name
    return AGE_BUCKETS[0][2]


def punctuality_by_type(
    closed: list[tuple[str, datetime, datetime, datetime]], period: Period, pack: PolicyPack
) -> list[dict[str, object]]:
    """Per type and month of closing: closed, on time, the on-time rate, median days."""
    groups: dict[tuple[str, Month], list[tuple[bool, float]]] = defaultdict(list)
    for kind, received, due, closed_at in closed:
        month = month_of(closed_at, pack.zone)
        days = (closed_at - received) / timedelta(days=1)
        groups[(kind, month)].append((closed_at <= due, days))
    rows = []
    for (kind, month), values in sorted(groups.items()):
        if month not in period.months:
            continue
        on_time = sum(ok for ok, _ in values)
        rows.append(
            {
                "type": kind,
                "month": month_key(month),
                "closed": len(values),
                "on_time": on_time,
                "rate": round(on_time / len(values), 4),
                "median_days": round(statistics.median(d for _, d in values), 1),
            }
        )
    return rows


async def figures(
    repo: Repositories, pack: PolicyPack, t: Translator, period: Period, now: datetime
) -> dict[str, object]:
    more = _more(repo)
    closed = await more.closed_by_type(period.start, period.end)
    by_type = punctuality_by_type(closed, period, pack)
    ages = {name: 0 for _, _, name in AGE_BUCKETS}
    for received in await more.open_received(OPEN):
        ages[age_bucket(received, now)] += 1
    grants: dict[tuple[str, Month], int] = defaultdict(int)
    for purpose, at in await more.grants(period.start, period.end):
        grants[(purpose, month_of(at, pack.zone))] += 1
    purposes = [p.id for p in pack.consent_purposes]
    kinds = sorted({row["type"] for row in by_type} | {str(k) for k in pack.rights})

    def title(purpose_id: str) -> str:
        found = pack.purpose(purpose_id)
        return (found.title.get(t.locale) if found else None) or purpose_id

    return {
        "months": [month_key(m) for m in period.months],
        "types": [{"type": k, "label": t(f"rights.{k}")} for k in kinds],
        "on_time": by_type,
        "open_by_age": [{"bucket": name, "count": ages[name]} for _, _, name in AGE_BUCKETS],
        "purposes": [{"purpose": p, "label": title(p)} for p in purposes],
        "consents": [
            {"purpose": p, "month": month_key(m), "granted": grants.get((p, m), 0)}
            for p in purposes
            for m in period.months
        ],
    }


# --- a request registered by staff ------------------------------------------------------------


@dataclass(frozen=True)
class External:
    kind: RequestType
    channel: str
    received_on: date
    identity_check: str
    text: str
    user_id: int | None = None  # the person's Telegram ID, if they gave one


class Invalid(ValueError):
    """What is wrong with an external request (a `desk_views.invalid_*` key's suffix)."""


def parse_external(body: dict[str, object], pack: PolicyPack, today: date) -> External:
    """The staff form's fields, checked: the pack's request types, a known channel, a date
    received neither in the future nor before the bot's data (two years), texts in bounds."""
    try:
        kind = RequestType(str(body.get("type", "")))
    except ValueError:
        raise Invalid("type") from None
    if kind not in pack.rights:
        raise Invalid("type")
    channel = str(body.get("channel", ""))
    if channel not in CHANNELS:
        raise Invalid("channel")
    try:
        received_on = date.fromisoformat(str(body.get("received_on", "")))
    except ValueError:
        raise Invalid("received_on") from None
    if received_on > today or received_on < today - timedelta(days=730):
        raise Invalid("received_on")
    identity = str(body.get("identity_check") or "").strip()
    if not identity or len(identity) > MAX_IDENTITY:
        raise Invalid("identity_check")
    text = str(body.get("text") or "").strip()
    if not text or len(text) > MAX_TEXT:
        raise Invalid("text")
    user_id = body.get("user_id")
    if user_id in (None, ""):
        user_id = None
    elif isinstance(user_id, bool) or not isinstance(user_id, int | str):
        raise Invalid("user_id")
    else:
        if not str(user_id).isdigit() or not 0 < int(user_id) < 2**63:
            raise Invalid("user_id")
        user_id = int(user_id)
    return External(kind, channel, received_on, identity, text, user_id)


def received_moment(day: date, pack: PolicyPack, now: datetime) -> datetime:
    """The start of the request's clock: the start of the day received in the operator's zone
    (the earliest it can have arrived, so the term is never longer than the law's); today:
    now, so a request registered as it arrives runs from the hour it did."""
    if day == now.astimezone(pack.zone).date():
        return now
    return datetime.combine(day, time(0, 0), tzinfo=pack.zone)


async def register_external(
    repo: Repositories, pack: PolicyPack, external: External, now: datetime
) -> Request:
    """The request, its number, its card (through `add_request`, the one place a request and
    its card are made) with its clock from the date received. Bound to the person's bot
    account when the Telegram ID is a user of the bot (they see it in /requests); otherwise
    the request has no user and the ID, if any, stays in its details. The caller commits."""
    linked = external.user_id is not None and await _more(repo).user_exists(external.user_id)
    answers = {"channel": external.channel, "identity": external.identity_check}
    if external.user_id is not None and not linked:
        answers["telegram_id"] = str(external.user_id)
    answers["text"] = external.text
    received = received_moment(external.received_on, pack, now)
    request = await add_request(
        repo,
        pack,
        external.user_id if linked else None,
        external.kind,
        answers,
        received,
        verification=EXTERNAL,
        queued_at=now,
    )
    return request
