"""The privacy notice, the help text, and what a new or announced policy version says."""

from __future__ import annotations

from html import escape

from bot.core.formatting import (
    authority_terms,
    complaint_text,
    contact_line,
    fmt_date,
    operator_address,
    operator_name,
    policy_edition,
    policy_link,
    processor_text,
    write_to,
)
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack, RequestType


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
            address=operator_address(pack, t),
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
        named = [processor_text(p, loc, t) for p in purpose.processors]
        for name in [*named, *(escape(r.get(loc)) for r in purpose.recipients)]:
            if name not in recipients:  # the same recipient of several purposes: once
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
            rights=right_names(pack, t),
            contact=write_to(op.contacts, loc),
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
            edition=policy_edition(pack, t),
            law=escape(pack.law_names(loc)),
            link=policy_link(pack, t),
        ),
    ]
    return "\n".join(lines)


def help_text(pack: PolicyPack, t: Translator) -> str:
    """What the bot can do; /rights lists the requests this pack offers (no «выгрузка» where
    the pack has no portability)."""
    filed = [r for r in pack.rights if r not in (RequestType.WITHDRAWAL, RequestType.COMPLAINT)]
    return t(
        "help.text",
        contact=contact_line(pack.operator.contacts, t.locale),
        rights=", ".join(t(f"rights.{r}") for r in filed),
    )


def right_name(right: RequestType, pack: PolicyPack, t: Translator) -> str:
    """A right's name; the complaint names each law's word for its authority («жалоба в
    уполномоченный орган или надзорный орган» where two laws apply)."""
    if right is RequestType.COMPLAINT:
        words = t("rights.authority_or").join(authority_terms(pack, t))
        return t("rights.complaint_to", authority=escape(words))
    return t(f"rights.{right}")


def right_names(pack: PolicyPack, t: Translator) -> str:
    return ", ".join(right_name(r, pack, t) for r in pack.rights)


def policy_update_text(pack: PolicyPack, t: Translator, *, reconfirm: bool) -> str:
    lines = [
        t(
            "policy_update.title",
            edition=policy_edition(pack, t),
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
