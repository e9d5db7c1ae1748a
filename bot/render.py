"""Texts composed from the policy pack and the locale catalogs (HTML parse mode)."""

from __future__ import annotations

from datetime import date, datetime
from html import escape
from zoneinfo import ZoneInfo

from bot.i18n import Translator
from bot.policy import Contacts, PolicyPack, RequestType


def fmt_date(value: date | datetime, t: Translator, zone: ZoneInfo) -> str:
    if isinstance(value, datetime):
        value = value.astimezone(zone).date()
    return value.strftime(t("common.date_format"))


def fmt_datetime(value: datetime, t: Translator, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime(t("common.datetime_format"))


def contact_line(contacts: Contacts, locale: str) -> str:
    parts = [contacts.email, contacts.phone, contacts.website]
    if contacts.address is not None:
        parts.append(contacts.address.get(locale))
    return ", ".join(escape(p) for p in parts if p)


def operator_name(pack: PolicyPack, locale: str) -> str:
    return escape(pack.operator.legal_name.get(locale))


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
        for processor in purpose.processors:
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
        t(
            "notice.complaint",
            authority=escape(op.authority.name.get(loc)),
            contact=contact_line(op.authority.contacts, loc),
        ),
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
