"""The consent screens: what is told before a consent is given, the list of purposes and
their states, the history of a person's consent events."""

from __future__ import annotations

from html import escape

from bot.core.deadlines import shown_term
from bot.core.formatting import (
    fmt_datetime,
    operator_address,
    operator_name,
    policy_edition,
    processors_text,
    processors_word,
    term_text,
    write_to,
)
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack, Purpose
from bot.domain.consents import ConsentView
from bot.telegram.texts.notice import right_name
from storage.models import ConsentEvent


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
    term = escape(processors_word(pack.terms, t).capitalize())
    lines += [
        "",
        t(
            "consents.info_operator",
            name=operator_name(pack, loc),
            address=operator_address(pack, t),
        ),
        t("consents.info_purpose", text=escape(purpose.description.get(loc))),
        t("consents.info_data", text=data),
        t("consents.info_duration", text=escape(purpose.retention.get(loc))),
        t("consents.info_actions", actions=escape(actions), methods=escape(methods)),
        t("consents.info_processors", term=term, text=processors_text(purpose.processors, t))
        if purpose.processors
        else t("consents.info_no_processors", term=term),
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
    refused = (
        escape(purpose.if_refused.get(loc))
        if purpose.if_refused
        else t("consents.info_refused_default")
    )
    lines += [
        *rights_lines(pack, t),
        t("consents.info_consequences", refused=refused),
        t(
            "consents.info_withdraw_marketing" if marketing else "consents.info_withdraw",
            contact=write_to(op.contacts, loc),
        ),
        "",
        t("consents.info_version", edition=policy_edition(pack, t)),
    ]
    if not pack.version_given:
        lines.append(t("consents.info_record", version=escape(pack.policy.version)))
    if pack.russian_prevails and loc != "ru":
        lines.append(t("consents.info_prevails"))
    return "\n".join(lines)


def rights_lines(pack: PolicyPack, t: Translator) -> list[str]:
    """Each right with a sentence of what it is and its term (Law 99-Z art. 5(1))."""
    lines = [t("consents.info_rights")]
    for right in pack.rights:
        name = right_name(right, pack, t)
        about = t(f"rights.about_{right}")
        deadline = shown_term(pack, right)  # the strictest of the laws' terms
        if deadline is None:
            lines.append(t("consents.info_right_line_no_term", name=name, about=about))
        else:
            term = term_text(deadline, t)
            lines.append(t("consents.info_right_line", name=name, about=about, term=term))
    return lines


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
