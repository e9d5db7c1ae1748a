"""Requests as staff and users see them: the staff card of a request, the due list (open
requests by due date, breaches the authority must still be told of first) and a user's own
requests, page by page."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from aiogram.types import InlineKeyboardMarkup

from bot.core.deadlines import strictest
from bot.core.formatting import fmt_date, fmt_datetime, months_cap
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack, RequestType
from bot.domain.requests.rules import CardNotes
from bot.telegram.paging import PagedList, footer, page_of, pager
from storage.models import Breach, Request, User

# What a card or the due list may spend on lists whose length data decides (README, long texts).
RECIPIENTS_ROOM = 1000


MAX_BREACH_LINES = 15


def card_text(
    request: Request,
    user: User | None,
    pack: PolicyPack,
    t: Translator,
    recipients: list[str] | None = None,
    notes: CardNotes | None = None,
    checklist: list[str] | None = None,
) -> str:
    """The staff card of a request, always rendered from the current state. `recipients`: whom
    the user's data was disclosed to, to be told of an erasure, correction or restriction;
    `notes`: what the desk's rules add (a refusal's ground, a repeat, clarifications beyond the
    agent's limit); `checklist`: the lines of the operator's systems carrying it out."""
    zone = pack.zone
    deadline = strictest(pack, RequestType(request.type), request.received_at)[0].deadline
    lines = [
        t("card.title", id=request.id, type=t(f"rights.{request.type}")),
        t(f"card.status_{request.status}"),
    ]
    if request.handled_by is not None and request.handled_at is not None:
        lines.append(
            t(
                "card.handled",
                staff=request.handled_by,
                when=fmt_datetime(request.handled_at, t, zone),
            )
        )
    if user is not None:
        name = " ".join(n for n in (user.first_name, user.last_name) if n) or "—"
        username = f"@{user.username}" if user.username else "—"
        lines.append(
            t(
                "card.user",
                id=user.id,
                username=escape(username),
                name=escape(name),
                lang=user.language,
            )
        )
        verified = t(f"card.verified_{request.verification.replace('+', '_')}")
        if request.verification.endswith("phone") and user.phone:
            verified += f" ({escape(user.phone)})"
        lines.append(t("card.verified", how=verified))
    lines += [
        t("card.received", when=fmt_datetime(request.received_at, t, zone)),
        t(
            "card.due",
            when=fmt_date(request.due_at, t, zone),
            days=deadline.days,
            kind=t(f"card.days_{deadline.kind}", days=deadline.days) + months_cap(deadline, t),
        ),
    ]
    if user is None and request.verification == "external":
        lines.append(t("card.no_bot_user"))
    for key, value in json.loads(request.details).items():
        label = t(f"card.detail_{key}")
        if key in ("processing", "purpose") and (purpose := pack.purpose(value)) is not None:
            value = purpose.title.get(t.locale)
        elif key == "channel":
            value = t(f"card.channel_{value}")
        lines.append(f"{label}: {escape(str(value))}")
    if notes is not None:
        lines += _rule_lines(notes, t, zone)
    if request.reason:
        lines.append(t("card.reason", reason=escape(request.reason)))
    if request.hold_until is not None:
        key = "card.restricted_until" if request.type == "restriction" else "card.hold_until"
        lines.append(t(key, when=fmt_date(request.hold_until, t, zone)))
    if checklist:
        lines += checklist
    if recipients:
        lines.append(t("card.tell_recipients", recipients=_recipients(recipients, t)))
    if request.user_unreachable:
        lines.append(t("card.unreachable"))
    if request.undelivered:
        lines.append(t("card.undelivered", count=request.undelivered))
    return "\n".join(lines)


def _rule_lines(notes: CardNotes, t: Translator, zone: ZoneInfo) -> list[str]:
    lines = []
    if notes.earlier is not None:
        when = fmt_date(notes.earlier.received_at, t, zone)
        lines.append(t("card.repeat_disclosures", id=notes.earlier.id, when=when))
    for said in notes.beyond:
        when = fmt_datetime(said.at, t, zone)
        lines.append(
            t("card.clarify_beyond", staff=said.staff_id, when=when, reason=escape(said.text))
        )
    if notes.ground is not None:
        ground, article = notes.ground.title.get(t.locale), notes.ground.article.get(t.locale)
        lines.append(t("card.refusal_ground", ground=escape(ground), article=escape(article)))
    return lines


def _recipients(recipients: list[str], t: Translator) -> str:
    """Whom the data was disclosed to, as many as fit RECIPIENTS_ROOM (each is at most 200
    characters, their number is not bounded), then how many more: the card fits one message."""
    shown: list[str] = []
    used = 0
    for recipient in recipients:
        if shown and used + len(recipient) + 2 > RECIPIENTS_ROOM:
            break
        shown.append(recipient)
        used += len(recipient) + 2
    text = escape("; ".join(shown))
    if len(shown) < len(recipients):
        text += t("card.recipients_more", count=len(recipients) - len(shown))
    return text


def _breach_lines(
    breaches: list[Breach], now: datetime, pack: PolicyPack, t: Translator
) -> list[str]:
    """The most urgent MAX_BREACH_LINES breaches (on every page of the list), then how many
    more: /breaches has them all."""
    if not breaches:
        return []
    lines = [t("breach.due_title", count=len(breaches))]
    for breach in breaches[:MAX_BREACH_LINES]:
        key = "breach.due_overdue" if breach.authority_due_at < now else "breach.due_line"
        when = fmt_datetime(breach.authority_due_at, t, pack.zone)
        lines.append(t(key, id=breach.id, due=when))
    if len(breaches) > MAX_BREACH_LINES:
        lines.append(t("breach.due_more", count=len(breaches) - MAX_BREACH_LINES))
    return [*lines, ""]


def _request_lines(
    requests: Sequence[Request], total: int, now: datetime, pack: PolicyPack, t: Translator
) -> list[str]:
    """Open requests by due date: overdue, due within 3 days, later."""
    groups: dict[str, list[str]] = {"due_overdue": [], "due_soon": [], "due_later": []}
    for request in requests:
        left = request.due_at - now
        group = (
            "due_overdue"
            if left.total_seconds() < 0
            else ("due_soon" if left.days < 3 else "due_later")
        )
        groups[group].append(
            t(
                "card.due_line",
                id=request.id,
                type=t(f"rights.{request.type}"),
                due=fmt_date(request.due_at, t, pack.zone),
                status=t(f"requests.status_{request.status}"),
            )
        )
    lines = [t("card.due_title", count=total) if total else t("card.due_none")]
    for group, entries in groups.items():
        if entries:
            lines += ["", t(f"card.{group}"), *entries]
    return lines


def due_page(
    requests: list[Request],
    now: datetime,
    pack: PolicyPack,
    t: Translator,
    number: int,
    breaches: list[Breach] | None = None,
) -> tuple[str, InlineKeyboardMarkup | None]:
    """One page of the open requests by due date (breaches the authority must still be told
    of come first on every page), with the count and Previous/Next for more than one page."""
    breaches = breaches or []
    if not requests and not breaches:
        return t("card.due_none"), None
    page = page_of(requests, number)
    lines = _breach_lines(breaches, now, pack, t)
    lines += _request_lines(page.items, len(requests), now, pack, t)
    if page.pages > 1:
        lines += ["", footer(page, t)]
    return "\n".join(lines), pager(page, t, PagedList.DUE)


def requests_page(
    requests: list[Request], pack: PolicyPack, t: Translator, number: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    """One page of a user's requests, newest first, with Previous/Next."""
    if not requests:
        return t("requests.list_empty"), None
    page = page_of(requests, number)
    lines = [t("requests.list_title"), ""]
    for request in page.items:
        lines.append(
            t(
                "requests.list_line",
                id=request.id,
                type=t(f"rights.{request.type}"),
                status=t(f"requests.status_{request.status}"),
                due=fmt_date(request.due_at, t, pack.zone),
            )
        )
    if page.pages > 1:
        lines += ["", footer(page, t)]
    return "\n".join(lines), pager(page, t, PagedList.REQUESTS)
