"""Personal data breaches: the record and draft notice staff see, and the notice an affected
user is told."""

from __future__ import annotations

from datetime import datetime
from html import escape

from bot.core.deadlines import breach_terms
from bot.core.formatting import (
    authority_word,
    complaint_text,
    contact_line,
    fmt_datetime,
    operator_address,
    operator_name,
)
from bot.core.i18n import Translator
from bot.core.law import Law
from bot.core.policy import PolicyPack
from bot.telegram.texts.parts import MESSAGE_ROOM, visible_length
from storage.models import Breach

# Shorter and shorter facts in the staff card until it fits one message (None: as written).
ROOMS = (None, 700, 500, 350, 250, 160, 100, 60)


def _clip(text: str, room: int | None) -> str:
    if room is not None and len(text) > room:
        text = text[: room - 1].rstrip() + "…"
    return escape(text)


def breach_facts(
    breach: Breach, pack: PolicyPack, t: Translator, room: int | None = None
) -> list[str]:
    return [
        t("breach.fact_known", when=fmt_datetime(breach.known_at, t, pack.zone)),
        t("breach.fact_what", text=_clip(breach.what, room)),
        t("breach.fact_data", text=_clip(breach.categories, room)),
        t("breach.fact_consequences", text=_clip(breach.consequences, room)),
        t("breach.fact_measures", text=_clip(breach.measures, room)),
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


def _authority(law: Law, locale: str) -> str:
    """The authority as the operator addresses it (not the person's «по месту вашего…»)."""
    return escape((law.authority.staff_name or law.authority.name).get(locale))


def _deadlines(
    breach: Breach, pack: PolicyPack, t: Translator, now: datetime, notified: dict[str, datetime]
) -> list[str]:
    """Each law's deadline for its authority, earliest first (or when it was notified), and
    the people's own term."""
    lines = []
    for law, due in breach_terms(pack, breach.known_at):
        rule, term = law.breach, escape(authority_word(law.words or pack.terms, t))
        if law.id in notified:
            when = fmt_datetime(notified[law.id], t, pack.zone)
            lines.append(
                t("breach.notified", term=term, authority=_authority(law, t.locale), when=when)
            )
            continue
        lines.append(
            t(
                "breach.deadline",
                term=term,
                due=fmt_datetime(due, t, pack.zone),
                authority=_authority(law, t.locale),
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


def _draft(
    breach: Breach,
    pack: PolicyPack,
    t: Translator,
    affected: int,
    law: Law,
    due: datetime,
    room: int | None,
) -> list[str]:
    """The notice to one law's authority, with its own deadline (GDPR art. 33(3)-(4))."""
    loc, op = t.locale, pack.operator
    lines = [
        t(
            "breach.draft_title",
            authority=_authority(law, loc),
            contact=contact_line(law.authority.contacts, loc),
            due=fmt_datetime(due, t, pack.zone),
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
        *breach_facts(breach, pack, t, room),
        t("breach.draft_affected", count=affected),
    ]
    if breach.people or breach.records:
        lines.append(
            t(
                "breach.draft_numbers",
                people=_clip(breach.people or "—", room),
                records=_clip(breach.records or "—", room),
            )
        )
    if breach.delay:
        lines.append(t("breach.draft_delay", text=_clip(breach.delay, room)))
    return lines


def breach_staff_text(
    breach: Breach,
    pack: PolicyPack,
    t: Translator,
    affected: int,
    now: datetime,
    notified: dict[str, datetime] | None = None,
) -> str:
    """The record, each authority's deadline (or its mark), the people's term and one draft
    notice per authority; the facts shortened where the whole would not fit one message
    (the /breaches register has them in full)."""
    text = ""
    for room in ROOMS:
        lines = [
            t("breach.recorded", id=breach.id),
            *_deadlines(breach, pack, t, now, notified or {}),
            t("breach.affected", count=affected, who=escape(breach.affected)),
        ]
        for law, due in breach_terms(pack, breach.known_at):
            lines += ["", *_draft(breach, pack, t, affected, law, due, room)]
        if breach.users_told_at is not None:
            when = fmt_datetime(breach.users_told_at, t, pack.zone)
            lines += ["", t("breach.told", when=when)]
        if room is not None:
            lines += ["", t("breach.clipped")]
        text = "\n".join(lines)
        if visible_length(text) <= MESSAGE_ROOM:
            break
    return text
