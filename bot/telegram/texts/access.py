"""The instant answer to an access request: who processes what, why and how long, what is
held about the person and to whom it was disclosed, in messages that each fit Telegram's limit."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from bot.core.deadlines import add_months
from bot.core.formatting import (
    complaint_text,
    contact_line,
    fmt_date,
    fmt_datetime,
    operator_address,
    operator_name,
    processors_text,
    processors_word,
)
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack, Purpose
from bot.telegram.texts.notice import right_names
from bot.telegram.texts.parts import split_message
from storage.models import User


def access_report(
    pack: PolicyPack,
    user: User,
    export: dict[str, Any],
    t: Translator,
    *,
    file_line: bool = True,
) -> list[str]:
    """The instant answer to an access request, in messages that each fit Telegram's limit;
    `file_line`: it ends saying the JSON file follows (the systems' answer says so itself)."""
    loc, op = t.locale, pack.operator
    info = [
        t("access.title"),
        "",
        t(
            "access.operator",
            name=operator_name(pack, loc),
            address=operator_address(pack, t),
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
        t("access.rights", rights=right_names(pack, t)),
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
    if file_line:
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
        term = escape(processors_word(pack.terms, t).capitalize())
        text = processors_text(purpose.processors, t)
        lines.append(t("access.processors", term=term, text=text))
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
