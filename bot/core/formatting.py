"""Formatting shared by every layer: dates and times in the operator's zone, contacts, the
operator's name, the note on month-capped terms and where to complain (HTML parse mode)."""

from __future__ import annotations

from datetime import date, datetime
from html import escape
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.core.i18n import Translator
from bot.core.law import Terms
from bot.core.policy import Authority, Contacts, Deadline, PolicyPack, Processor

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


def write_to(contacts: Contacts, locale: str) -> str:
    """Where to write (after «письмом на», "by writing to"): the e-mail, else every contact."""
    return escape(contacts.email) if contacts.email else contact_line(contacts, locale)


def operator_name(pack: PolicyPack, locale: str) -> str:
    return escape(pack.operator.legal_name.get(locale))


def operator_address(pack: PolicyPack, t: Translator) -> str:
    """The operator's address, or that the policy does not give it (never an invented one)."""
    address = pack.operator.address
    return escape(address.get(t.locale)) if address else t("policy.no_address")


def policy_edition(pack: PolicyPack, t: Translator) -> str:
    """«версия 1.0 от 01.01.2025», or only what the policy gives of its version and date."""
    policy, zone = pack.policy, pack.zone
    date_text = fmt_date(policy.effective_date, t, zone) if policy.effective_date else None
    if pack.version_given:
        version = escape(policy.version)
        if date_text:
            return t("policy.edition", version=version, date=date_text)
        return t("policy.edition_version", version=version)
    if date_text:
        return t("policy.edition_date", date=date_text)
    return t("policy.edition_none")


def policy_link(pack: PolicyPack, t: Translator) -> str:
    """The full policy's address, or that the policy gives none and whom to ask for the text."""
    url = pack.policy.url
    if url:
        return t("policy.link", url=escape(url))
    return t("policy.no_link", contact=write_to(pack.operator.contacts, t.locale))


def processor_text(processor: Processor, locale: str, t: Translator) -> str:
    """«VMware (США) — вендор»; what the policy does not give is said to be not given."""
    role = escape(processor.role.get(locale))
    name = escape(processor.name.get(locale)) if processor.name else None
    country = escape(processor.country.get(locale)) if processor.country else None
    if name and country:
        return t("processor.named", name=name, country=country, role=role)
    if name:
        return t("processor.no_country", name=name, role=role)
    if country:
        return t("processor.no_name", country=country, role=role)
    return t("processor.category", role=role)


def processors_text(processors: list[Processor], t: Translator) -> str:
    return "; ".join(processor_text(p, t.locale, t) for p in processors)


def term_text(deadline: Deadline, t: Translator) -> str:
    """A term as people read it: «15 календарных дней», «30 календарных дней, но не дольше 1
    месяца», «72 часа»."""
    kind = t(f"card.days_{deadline.kind}", days=deadline.days)
    return f"{deadline.days} {kind}{months_cap(deadline, t)}"


def months_cap(deadline: Deadline, t: Translator) -> str:
    """The note ", at most one month" after a term in days that a month may end sooner."""
    if not deadline.at_most_months:
        return ""
    return t("common.at_most_months", months=deadline.at_most_months)


def authority_word(terms: Terms | None, t: Translator) -> str:
    """The law's word for its authority («уполномоченный орган», «надзорный орган»)."""
    return terms.authority.get(t.locale) if terms else t("terms.authority")


def processors_word(terms: Terms | None, t: Translator) -> str:
    """The law's word for processors («уполномоченные лица», «обработчики»)."""
    return terms.processors.get(t.locale) if terms else t("terms.processors")


def authority_terms(pack: PolicyPack, t: Translator) -> list[str]:
    """The words for every authority that applies, each once: what the rights lists call the
    complaint («жалоба в уполномоченный орган или надзорный орган»)."""
    return list(dict.fromkeys(authority_word(words, t) for _, words in pack.authority_words))


def _authorities(pack: PolicyPack, t: Translator, key: str) -> list[str]:
    """`key` told of every authority that applies (each law's, by that law's word for it)."""
    return [
        t(
            key,
            authority=escape(authority.name.get(t.locale)),
            contact=contact_line(authority.contacts, t.locale),
            term=escape(authority_word(words, t)),
            appeal=appeal_text(authority, t),
        )
        for authority, words in pack.authority_words
    ]


def complaint_text(pack: PolicyPack, t: Translator) -> str:
    """Where to complain: the authority with its contacts, and the court (GDPR arts. 12(4), 77,
    79; Law 99-Z art. 15). Told in the notice, every refusal and the access answer: one
    heading, one authority on its line, several as a list under it."""
    places = _authorities(pack, t, "notice.complaint_place")
    if len(places) == 1:
        return t("notice.complaint", places=places[0])
    items = "\n".join(t("notice.complaint_item", place=place) for place in places)
    return t("notice.complaint_list", items=items)


def complaint_screen(pack: PolicyPack, t: Translator) -> str:
    """/rights → complaint: every authority that applies, with its contacts and court."""
    return "\n\n".join(_authorities(pack, t, "flow.complaint"))


def appeal_text(authority: Authority, t: Translator) -> str:
    """The sentence on going to court: the authority's (Law 99-Z art. 15: its decision is
    appealed to a court), else "You may also go to {court}"."""
    if authority.appeal is not None:
        return escape(authority.appeal.get(t.locale))
    court = authority.court.get(t.locale) if authority.court else t("common.court_default")
    return t("common.court_also", court=escape(court))
