"""Formatting shared by every layer: dates and times in the operator's zone, contacts, the
operator's name, the note on month-capped terms and where to complain (HTML parse mode)."""

from __future__ import annotations

from datetime import date, datetime
from html import escape
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.core.i18n import Translator
from bot.core.policy import Contacts, Deadline, PolicyPack

if TYPE_CHECKING:
    pass


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


def months_cap(deadline: Deadline, t: Translator) -> str:
    """The note ", at most one month" after a term in days that a month may end sooner."""
    if not deadline.at_most_months:
        return ""
    return t("common.at_most_months", months=deadline.at_most_months)


def _authorities(pack: PolicyPack, t: Translator, key: str, sep: str) -> str:
    """`key` told of every authority that applies (each law's, where several apply)."""
    return sep.join(
        t(
            key,
            authority=escape(authority.name.get(t.locale)),
            contact=contact_line(authority.contacts, t.locale),
            court=escape(
                authority.court.get(t.locale) if authority.court else t("common.court_default")
            ),
        )
        for authority in pack.authorities
    )


def complaint_text(pack: PolicyPack, t: Translator) -> str:
    """Where to complain: the authority with its contacts, and the court (GDPR arts. 12(4), 77,
    79; Law 99-Z art. 15). Told in the notice, every refusal and the access answer."""
    return _authorities(pack, t, "notice.complaint", "\n")


def complaint_screen(pack: PolicyPack, t: Translator) -> str:
    """/rights → complaint: every authority that applies, with its contacts and court."""
    return _authorities(pack, t, "flow.complaint", "\n\n")
