"""The answer to an access or portability request carried out in the operator's systems: the
systems' part of the readable answer (per system, per category, each record with its source;
the tables whose rows the law keeps, with the reason; what staff did by hand or a DPO
explained), in messages that fit Telegram's limit, or as one HTML file when it is long. It
reads the export's `systems` part (bot.domain.export), so the file and the text agree."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from bot.core.formatting import fmt_datetime
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from bot.telegram.texts.parts import MESSAGE_ROOM, split_message

# More messages than this, and the systems' part goes as a file instead.
MAX_MESSAGES = 3


def systems_text(pack: PolicyPack, systems: list[dict[str, Any]], t: Translator) -> str:
    """The systems' part of the access answer, as one HTML text (Telegram's subset)."""
    lines = [t("answer.systems_title")]
    for system in systems:
        lines += ["", *_system_lines(pack, system, t)]
    return "\n".join(lines)


def _system_lines(pack: PolicyPack, system: dict[str, Any], t: Translator) -> list[str]:
    name = escape(system["name"])
    when = system["completed_at"]
    note = escape(system["note"] or "") or t("answer.no_note")
    if system["status"] != "done" or when is None:
        return [t("answer.system_open", name=name), t("answer.not_carried_out", note=note)]
    shown = fmt_datetime(datetime.fromisoformat(when), t, pack.zone)
    if system["by_hand"]:
        lines = [t("answer.system_by_hand", name=name, when=shown), t("answer.by_hand", note=note)]
    else:
        lines = [t("answer.system", name=name, when=shown)]
    categories: dict[str, list[dict[str, Any]]] = system["categories"]
    for category, records in categories.items():
        title = pack.categories.get(category)
        lines.append(t("answer.category", title=escape(title.get(t.locale) if title else category)))
        lines += [_record(record, t) for record in records]
    for kept in system["kept"]:
        reason = escape(kept["reason"] or "") or t("answer.no_note")
        lines.append(t("answer.kept", source=escape(kept["source"]), reason=reason))
    if not categories and not system["by_hand"]:
        lines.append(t("answer.nothing"))
    return lines


def _record(record: dict[str, Any], t: Translator) -> str:
    fields: dict[str, Any] = record.get("fields") or {}
    shown = "; ".join(
        t("answer.field", name=escape(str(name)), value=_value(value, t))
        for name, value in fields.items()
    )
    return t("answer.record", source=escape(str(record.get("source", ""))), fields=shown or "—")


def _value(value: Any, t: Translator) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return t("answer.yes") if value else t("answer.no")
    if isinstance(value, list):
        return ", ".join(_value(v, t) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{escape(str(k))}: {_value(v, t)}" for k, v in value.items())
    return escape(str(value))


def systems_messages(text: str) -> list[str] | None:
    """The systems' part in messages, or None when it takes more than MAX_MESSAGES (then it
    goes as a file)."""
    parts = split_message(text)
    if len(parts) > MAX_MESSAGES or any(len(part) > MESSAGE_ROOM for part in parts):
        return None  # long, or one record longer than a message
    return parts


def systems_html(text: str, title: str, locale: str) -> bytes:
    """The systems' part as an HTML page (any browser opens it): the same text and markup."""
    body = text.replace("\n", "<br>\n")
    page = (
        f'<!DOCTYPE html>\n<html lang="{locale}">\n<head><meta charset="utf-8">'
        f"<title>{title}</title></head>\n<body>\n{body}\n</body>\n</html>\n"
    )
    return page.encode("utf-8")


def export_caption(export: dict[str, Any], t: Translator) -> str:
    """The JSON file's caption: what it holds, with the systems whose data it carries."""
    caption = t(
        "export.caption",
        consents=len(export["consents"]["ledger"]),
        requests=len(export["requests"]),
        disclosures=len(export["disclosures"]),
        version=export["version"],
    )
    collected = [s for s in export["systems"] if s["categories"]]
    if collected:
        caption += " " + t("export.caption_systems", count=len(collected))
    return caption
