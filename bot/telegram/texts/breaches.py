"""Personal data breaches: the record and draft notice staff see, and the notice an affected
user is told."""

from __future__ import annotations

from html import escape

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


def breach_staff_text(breach: Breach, pack: PolicyPack, t: Translator, affected: int) -> str:
    """The record, the authority's deadline and the draft notice to the authority."""
    loc, op = t.locale, pack.operator
    rule = pack.breach.authority
    lines = [
        t("breach.recorded", id=breach.id),
        t(
            "breach.deadline",
            authority=escape(pack.terms.authority.get(loc)),
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
    if breach.authority_notified_at is not None:
        lines += [
            "",
            t("breach.notified", when=fmt_datetime(breach.authority_notified_at, t, pack.zone)),
        ]
    if breach.users_told_at is not None:
        lines.append(t("breach.told", when=fmt_datetime(breach.users_told_at, t, pack.zone)))
    return "\n".join(lines)
