"""Texts composed from the policy pack and the locale catalogs (HTML parse mode)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncGenerator, AsyncIterable, Sequence
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any

from aiogram.types import InlineKeyboardMarkup

from bot.core.deadlines import add_months
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack, Purpose, RequestType
from bot.telegram.paging import PagedList, footer, page_of, pager
from storage.models import Breach, ConsentEvent, Delivery, Request, User

if TYPE_CHECKING:
    from bot.domain.consents import ConsentView
from bot.core.formatting import (
    complaint_text,
    contact_line,
    fmt_date,
    fmt_datetime,
    months_cap,
    operator_name,
)


def notice_text(pack: PolicyPack, t: Translator) -> str:
    """The short privacy notice: who, what, why, basis, recipients, transfer, retention, rights."""
    loc = t.locale
    op = pack.operator
    registration = (
        t("notice.registration", number=escape(op.registration_number))
        if op.registration_number
        else ""
    )
    lines = [
        t("notice.title", operator=operator_name(pack, loc)),
        "",
        t(
            "notice.operator",
            name=operator_name(pack, loc),
            registration=registration,
            address=escape(op.address.get(loc)),
            contact=contact_line(op.contacts, loc),
        ),
        "",
        t("notice.purposes"),
    ]
    recipients: list[str] = []
    transfers: list[str] = []
    for purpose in pack.purposes:
        line = t(
            "notice.purpose_line",
            title=escape(purpose.title.get(loc)),
            basis=t(f"basis.{purpose.legal_basis}"),
            data="; ".join(escape(c.get(loc)) for c in purpose.data_categories),
            retention=escape(purpose.retention.get(loc)),
        )
        if purpose.requires_consent:
            line += " " + t("notice.optional")
        lines.append(line)
        for processor in [*purpose.processors, *purpose.recipients]:
            if (name := escape(processor.get(loc))) not in recipients:
                recipients.append(name)
        if purpose.cross_border is not None:
            transfers.append(escape(purpose.cross_border.get(loc)))
    lines.append("")
    if recipients:
        lines.append(t("notice.recipients", recipients="; ".join(recipients)))
    if transfers:
        lines.append(t("notice.cross_border", transfer="; ".join(transfers)))
    else:
        lines.append(t("notice.no_cross_border"))
    lines += [
        t(
            "notice.rights",
            rights=right_names(pack.rights, t),
            contact=contact_line(op.contacts, loc),
        ),
        complaint_text(pack, t),
    ]
    if (upcoming := pack.next_policy) is not None:
        lines.append(
            t(
                "policy_next.in_notice",
                version=escape(upcoming.version),
                date=fmt_date(upcoming.effective_date, t, pack.zone),
                changes=escape(upcoming.changes.get(loc)),
            )
        )
    lines += [
        "",
        t(
            "notice.version",
            version=escape(pack.policy.version),
            date=fmt_date(pack.policy.effective_date, t, pack.zone),
            law=escape(pack.law.get(loc)),
            url=escape(pack.policy.url),
        ),
    ]
    return "\n".join(lines)


def help_text(pack: PolicyPack, t: Translator) -> str:
    return t("help.text", contact=contact_line(pack.operator.contacts, t.locale))


def right_names(rights: list[RequestType], t: Translator) -> str:
    return ", ".join(t(f"rights.{r}") for r in rights)


def consent_info_text(purpose: Purpose, pack: PolicyPack, t: Translator, *, reconfirm: bool) -> str:
    """Everything told before a consent is given (Law 99-Z art. 5; seed 002, 5.2): operator,
    purpose, data, period, actions, processors, transfer with its risks, rights, what follows
    from agreeing or refusing, how to withdraw."""
    loc, op = t.locale, pack.operator
    lines = [t("consents.info_title", title=escape(purpose.title.get(loc)))]
    if reconfirm:
        lines.append(t("consents.info_reconfirm", version=escape(pack.policy.version)))
    methods = purpose.methods.get(loc) if purpose.methods else t("consents.info_methods_default")
    actions = purpose.actions.get(loc) if purpose.actions else methods
    data = "; ".join(escape(c.get(loc)) for c in purpose.data_categories)
    processors = "; ".join(escape(p.get(loc)) for p in purpose.processors)
    lines += [
        "",
        t(
            "consents.info_operator",
            name=operator_name(pack, loc),
            address=escape(op.address.get(loc)),
        ),
        t("consents.info_purpose", text=escape(purpose.description.get(loc))),
        t("consents.info_data", text=data),
        t("consents.info_duration", text=escape(purpose.retention.get(loc))),
        t("consents.info_actions", actions=escape(actions), methods=escape(methods)),
        t("consents.info_processors", text=processors)
        if purpose.processors
        else t("consents.info_no_processors"),
    ]
    if purpose.cross_border or purpose.countries:
        text = purpose.cross_border.get(loc) if purpose.cross_border else ""
        lines.append(t("consents.info_cross_border", text=escape(text)))
        for country in purpose.countries:
            name = escape(country.name.get(loc))
            if country.adequate:
                lines.append(t("consents.info_country_adequate", country=name))
            else:
                risks = escape(country.risks.get(loc)) if country.risks else ""
                lines.append(t("consents.info_country_risks", country=name, risks=risks))
    else:
        lines.append(t("consents.info_no_cross_border"))
    marketing = pack.marketing is not None and pack.marketing.purpose == purpose.id
    lines += [
        t("consents.info_rights", rights=right_names(pack.rights, t)),
        t("consents.info_consequences"),
        t(
            "consents.info_withdraw_marketing" if marketing else "consents.info_withdraw",
            contact=contact_line(op.contacts, loc),
        ),
        "",
        t("consents.info_version", version=escape(pack.policy.version)),
    ]
    return "\n".join(lines)


def consent_list_text(
    views: list[ConsentView],
    pack: PolicyPack,
    t: Translator,
    *,
    minor: bool,
    subject_name: str | None = None,
    status: str | None = None,
) -> str:
    loc = t.locale
    title = (
        t("consents.title_for", name=escape(subject_name)) if subject_name else t("consents.title")
    )
    lines = [title, ""]
    for view in views:
        name = escape(view.purpose.title.get(loc))
        if view.needs_reconfirm:
            lines.append(t("consents.line_reconfirm", title=name))
        elif view.granted and view.since is not None:
            when = fmt_datetime(view.since.updated_at, t, pack.zone)
            lines.append(t("consents.line_on", title=name, when=when))
        else:
            lines.append(t("consents.line_off", title=name))
    lines += ["", t("consents.minor_footer") if minor else t("consents.footer")]
    if status:
        lines += ["", status]
    return "\n".join(lines)


def consent_history_text(events: list[ConsentEvent], pack: PolicyPack, t: Translator) -> str:
    lines = [t("consents.history_title"), ""]
    if not events:
        lines.append(t("consents.history_empty"))
    for event in events:
        purpose = pack.purpose(event.purpose)
        title = purpose.title.get(t.locale) if purpose else event.purpose
        lines.append(
            t(
                "consents.history_line",
                when=fmt_datetime(event.at, t, pack.zone),
                title=escape(title),
                state=t("consents.state_granted" if event.granted else "consents.state_withdrawn"),
                source=t(f"source.{event.source}"),
            )
        )
    return "\n".join(lines)


def policy_update_text(pack: PolicyPack, t: Translator, *, reconfirm: bool) -> str:
    lines = [
        t(
            "policy_update.title",
            version=escape(pack.policy.version),
            date=fmt_date(pack.policy.effective_date, t, pack.zone),
        )
    ]
    if pack.policy.changes is not None:
        lines.append(t("policy_update.changes", changes=escape(pack.policy.changes.get(t.locale))))
    if reconfirm:
        lines.append(t("policy_update.reconfirm"))
    return "\n\n".join(lines)


def policy_next_text(pack: PolicyPack, t: Translator) -> str:
    """The advance notice of the next version: when, what changes, and that a user who
    disagrees may stop using the service and exercise their rights (seed 002, 8.3)."""
    upcoming = pack.next_policy
    assert upcoming is not None
    return "\n\n".join(
        [
            t(
                "policy_next.title",
                version=escape(upcoming.version),
                date=fmt_date(upcoming.effective_date, t, pack.zone),
            ),
            t("policy_update.changes", changes=escape(upcoming.changes.get(t.locale))),
            t("policy_next.disagree"),
        ]
    )


# What a card or the due list may spend on lists whose length data decides (README, long texts).
RECIPIENTS_ROOM = 1000
MAX_BREACH_LINES = 15


def campaign_text(reason: str, body_html: str) -> str:
    """A marketing message: the first line says why the user gets it (GDPR pack, mailings)."""
    return f"<i>{escape(reason)}</i>\n\n{body_html}"


def card_text(
    request: Request,
    user: User | None,
    pack: PolicyPack,
    t: Translator,
    recipients: list[str] | None = None,
) -> str:
    """The staff card of a request, always rendered from the current state. `recipients`: whom
    the user's data was disclosed to, to be told of an erasure, correction or restriction."""
    zone = pack.zone
    deadline = pack.deadlines[RequestType(request.type)]
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
    for key, value in json.loads(request.details).items():
        label = t(f"card.detail_{key}")
        if key in ("processing", "purpose") and (purpose := pack.purpose(value)) is not None:
            value = purpose.title.get(t.locale)
        lines.append(f"{label}: {escape(str(value))}")
    if request.reason:
        lines.append(t("card.reason", reason=escape(request.reason)))
    if request.hold_until is not None:
        key = "card.restricted_until" if request.type == "restriction" else "card.hold_until"
        lines.append(t(key, when=fmt_date(request.hold_until, t, zone)))
    if recipients:
        lines.append(t("card.tell_recipients", recipients=_recipients(recipients, t)))
    if request.user_unreachable:
        lines.append(t("card.unreachable"))
    if request.undelivered:
        lines.append(t("card.undelivered", count=request.undelivered))
    return "\n".join(lines)


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


def breach_facts(breach: Breach, pack: PolicyPack, t: Translator) -> list[str]:
    return [
        t("breach.fact_known", when=fmt_datetime(breach.known_at, t, pack.zone)),
        t("breach.fact_what", text=escape(breach.what)),
        t("breach.fact_data", text=escape(breach.categories)),
        t("breach.fact_consequences", text=escape(breach.consequences)),
        t("breach.fact_measures", text=escape(breach.measures)),
    ]


def breach_notice_text(breach: Breach, pack: PolicyPack, t: Translator) -> str:
    """What an affected user is told (GDPR art. 34(2)): what happened, likely consequences,
    measures, whom to contact, and where to complain."""
    op = pack.operator
    lines = [t("breach.user_title", operator=operator_name(pack, t.locale)), ""]
    lines += breach_facts(breach, pack, t)
    lines += [
        t("breach.user_contact", contact=contact_line(op.contacts, t.locale)),
        "",
        complaint_text(pack, t),
    ]
    return "\n".join(lines)


def breach_staff_text(breach: Breach, pack: PolicyPack, t: Translator, affected: int) -> str:
    """The record, the authority's deadline and the draft notice to the authority."""
    loc, op = t.locale, pack.operator
    rule = pack.breach.authority
    lines = [
        t("breach.recorded", id=breach.id),
        t(
            "breach.deadline",
            due=fmt_datetime(breach.authority_due_at, t, pack.zone),
            days=rule.days,
            kind=t(f"card.days_{rule.kind}", days=rule.days),
            law=escape(pack.law.get(loc)),
        ),
        t("breach.affected", count=affected, who=escape(breach.affected)),
        "",
        t(
            "breach.draft_title",
            authority=escape(op.authority.name.get(loc)),
            contact=contact_line(op.authority.contacts, loc),
        ),
        t(
            "breach.draft_operator",
            name=operator_name(pack, loc),
            registration=escape(op.registration_number or ""),
            address=escape(op.address.get(loc)),
            contact=contact_line(op.contacts, loc),
        ),
        *breach_facts(breach, pack, t),
        t("breach.draft_affected", count=affected),
    ]
    if breach.authority_notified_at is not None:
        lines += [
            "",
            t("breach.notified", when=fmt_datetime(breach.authority_notified_at, t, pack.zone)),
        ]
    if breach.users_told_at is not None:
        lines.append(t("breach.told", when=fmt_datetime(breach.users_told_at, t, pack.zone)))
    return "\n".join(lines)


def breaches_csv(rows: list[tuple[Breach, list[Delivery]]]) -> bytes:
    """The breach register: one row per user told (or one row without users), UTC times."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "breach",
            "known",
            "recorded",
            "what",
            "data",
            "consequences",
            "measures",
            "affected",
            "authority_due",
            "authority_notified",
            "users_told",
            "user_id",
            "delivery",
            "sent",
        ]
    )
    for breach, deliveries in rows:
        head = [
            breach.id,
            breach.known_at.isoformat(),
            breach.created_at.isoformat(),
            breach.what,
            breach.categories,
            breach.consequences,
            breach.measures,
            breach.affected,
            breach.authority_due_at.isoformat(),
            breach.authority_notified_at.isoformat() if breach.authority_notified_at else "",
            breach.users_told_at.isoformat() if breach.users_told_at else "",
        ]
        for d in deliveries or [None]:
            tail = (
                ["", "", ""]
                if d is None
                else [
                    d.user_id,
                    d.status,
                    d.sent_at.isoformat() if d.sent_at else "",
                ]
            )
            writer.writerow(head + tail)
    return buffer.getvalue().encode("utf-8")


REGISTER_COLUMNS = (
    "number",
    "type",
    "user_id",
    "received",
    "due",
    "status",
    "closed",
    "handled_by",
)


async def register_rows(
    rows: AsyncIterable[tuple[Any, ...]],
) -> AsyncGenerator[list[Any], None]:
    """The register of all requests, for the operator's accountability (UTC times)."""
    async for number, kind, user_id, received, due, status, closed, handled_by in rows:
        yield [
            number,
            kind,
            user_id,
            received.isoformat(),
            due.isoformat(),
            status,
            closed.isoformat() if closed else "",
            handled_by or "",
        ]


def access_report(
    pack: PolicyPack,
    user: User,
    export: dict[str, Any],
    t: Translator,
) -> list[str]:
    """The instant answer to an access request, in messages that each fit Telegram's limit."""
    loc, op = t.locale, pack.operator
    info = [
        t("access.title"),
        "",
        t(
            "access.operator",
            name=operator_name(pack, loc),
            address=escape(op.address.get(loc)),
            contact=contact_line(op.contacts, loc),
        ),
        t("access.confirmation"),
        "",
        t("access.purposes"),
    ]
    current = {c["purpose"]: c for c in export["consents"]["current"]}
    for purpose in pack.purposes:
        state = current.get(purpose.id)
        if purpose.requires_consent and not (state and state["granted"]):
            # Not processed for this purpose: only its state (withdrawn on …, never given).
            line = (
                t(
                    "access.consent_withdrawn",
                    title=escape(purpose.title.get(loc)),
                    when=fmt_date(datetime.fromisoformat(state["since"]), t, pack.zone),
                )
                if state
                else t("access.consent_never", title=escape(purpose.title.get(loc)))
            )
            info.append(line)
            continue
        info += purpose_lines(purpose, pack, t, state)
    if pack.automated_decisions is not None:
        info += ["", t("access.automated", text=escape(pack.automated_decisions.get(loc)))]
    info += [
        "",
        t("access.rights", rights=right_names(pack.rights, t)),
        complaint_text(pack, t),
    ]

    held = [t("access.held_title"), ""]
    profile = export["profile"]
    name = " ".join(str(profile[k]) for k in ("first_name", "last_name") if profile[k])
    held.append(
        t(
            "access.held_profile",
            id=user.id,
            username=escape(f"@{user.username}" if user.username else "—"),
            name=escape(name or "—"),
            language=user.language,
        )
    )
    if user.age_group and user.age_answered_at:
        answer = t(f"age.{user.age_group}", age=pack.age.consent_age)
        when = fmt_datetime(user.age_answered_at, t, pack.zone)
        held.append(t("access.held_age", answer=answer, when=when))
    if user.phone and user.phone_verified_at:
        when = fmt_datetime(user.phone_verified_at, t, pack.zone)
        held.append(t("access.held_phone", phone=escape(user.phone), when=when))
    consents = export["consents"]
    on = [
        escape(p.title.get(loc))
        for c in consents["current"]
        if c["granted"] and (p := pack.purpose(c["purpose"])) is not None
    ]
    held.append(t("access.held_consents", on=", ".join(on) or "—", events=len(consents["ledger"])))
    held.append(t("access.held_requests", count=len(export["requests"])))
    representatives = export["legal_representatives"]
    if representatives:
        held.append(t("access.held_guardian", count=len(representatives)))
    held += ["", t("access.disclosures_title")]
    disclosures = export["disclosures"]
    cutoff = _year_ago(export)
    recent = [d for d in disclosures if d["at"] >= cutoff]
    for d in recent:
        held.append(
            t(
                "access.disclosure_line",
                when=fmt_date(datetime.fromisoformat(d["at"]), t, pack.zone),
                recipient=escape(d["recipient"]),
                data=escape(d["data"]),
                basis=escape(d["legal_basis"]),
            )
        )
    if not recent:
        held.append(t("access.no_disclosures"))
    held += ["", t("access.file")]
    return [chunk for part in (info, held) for chunk in split_message("\n".join(part))]


def purpose_lines(
    purpose: Purpose, pack: PolicyPack, t: Translator, state: dict[str, Any] | None
) -> list[str]:
    """One purpose of the access answer: basis (with the consent's date or the interest
    pursued), data, source, period, processors and recipients, transfer, methods."""
    loc = t.locale
    source = purpose.source.get(loc) if purpose.source else t("access.source_default")
    basis = t(f"basis.{purpose.legal_basis}")
    if state is not None:
        since = fmt_date(datetime.fromisoformat(state["since"]), t, pack.zone)
        basis = t("access.consent_on", basis=basis, when=since)
    lines = [
        t(
            "access.purpose_line",
            title=escape(purpose.title.get(loc)),
            basis=basis,
            data="; ".join(escape(c.get(loc)) for c in purpose.data_categories),
            source=escape(source),
            retention=escape(purpose.retention.get(loc)),
        )
    ]
    if purpose.interest is not None:
        lines.append(t("access.interest", text=escape(purpose.interest.get(loc))))
    if purpose.processors:
        processors = "; ".join(escape(p.get(loc)) for p in purpose.processors)
        lines.append(t("access.processors", text=processors))
    if purpose.recipients:
        recipients = "; ".join(escape(p.get(loc)) for p in purpose.recipients)
        lines.append(t("access.recipients", text=recipients))
    if purpose.cross_border:
        lines.append(t("access.cross_border", text=escape(purpose.cross_border.get(loc))))
    if purpose.methods:
        lines.append(t("access.methods", text=escape(purpose.methods.get(loc))))
    return lines


def _year_ago(export: dict[str, Any]) -> str:
    """A year before the export (29 February -> 28 February of the year before)."""
    generated = datetime.fromisoformat(str(export["generated_at"]))
    return add_months(generated, -12).isoformat()


def split_message(text: str, limit: int = 4000) -> list[str]:
    """Split a long text at line ends into parts Telegram accepts."""
    parts, current = [], ""
    for line in text.split("\n"):
        if current and len(current) + 1 + len(line) > limit:
            parts.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        parts.append(current)
    return parts
