"""Personal data breaches: the record and draft notice staff see, and the notice an affected
user is told."""

from __future__ import annotations

from datetime import datetime
from html import escape

from bot.core.deadlines import breach_terms
from bot.core.formatting import (
    complaint_text,
    contact_line,
    fmt_datetime,
    operator_address,
    operator_name,
)
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from storage.models import Breach


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


def _deadlines(breach: Breach, pack: PolicyPack, t: Translator, now: datetime) -> list[str]:
    """Each law's deadline for its authority, earliest first, and the people's own term."""
    lines = []
    for law, due in breach_terms(pack, breach.known_at):
        rule = law.breach
        lines.append(
            t(
                "breach.deadline",
                term=escape((law.words or pack.terms).authority.get(t.locale)),
                due=fmt_datetime(due, t, pack.zone),
                authority=escape(law.authority.name.get(t.locale)),
                days=rule.days,
                kind=t(f"card.days_{rule.kind}", days=rule.days),
                law=escape(law.name.get(t.locale)),
            )
        )
    if breach.users_due_at is not None:
        due = fmt_datetime(breach.users_due_at, t, pack.zone)
        if breach.users_told_at is None:
            late = breach.users_due_at < now
            lines.append(t("breach.users_overdue" if late else "breach.users_due", due=due))
        elif breach.users_told_at > breach.users_due_at:
            lines.append(t("breach.users_late", due=due))
    return lines


def breach_staff_text(
    breach: Breach, pack: PolicyPack, t: Translator, affected: int, now: datetime
) -> str:
    """The record, the authorities' deadlines, the people's term and the draft notice."""
    loc, op = t.locale, pack.operator
    lines = [
        t("breach.recorded", id=breach.id),
        *_deadlines(breach, pack, t, now),
        t("breach.affected", count=affected, who=escape(breach.affected)),
        "",
        t(
            "breach.draft_title",
            authority="; ".join(escape(a.name.get(loc)) for a in pack.authorities),
            contact="; ".join(contact_line(a.contacts, loc) for a in pack.authorities),
        ),
        t(
            "breach.draft_operator",
            name=operator_name(pack, loc),
            registration=(
                t("notice.registration", number=escape(op.registration_number))
                if op.registration_number
                else ""
            ),
            address=operator_address(pack, t),
            contact=contact_line(op.contacts, loc),
        ),
        *breach_facts(breach, pack, t),
        t("breach.draft_affected", count=affected),
    ]
    if breach.people or breach.records:
        lines.append(
            t(
                "breach.draft_numbers",
                people=escape(breach.people or "—"),
                records=escape(breach.records or "—"),
            )
        )
    if breach.delay:
        lines.append(t("breach.draft_delay", text=escape(breach.delay)))
    if breach.authority_notified_at is not None:
        lines += [
            "",
            t("breach.notified", when=fmt_datetime(breach.authority_notified_at, t, pack.zone)),
        ]
    if breach.users_told_at is not None:
        lines.append(t("breach.told", when=fmt_datetime(breach.users_told_at, t, pack.zone)))
    return "\n".join(lines)
