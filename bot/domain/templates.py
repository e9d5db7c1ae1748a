"""Answer templates: staff keep a text per language and send it from a request card.

`/templates add <name>` is followed by one block per language, each starting with `ru:` or
`en:`; a block runs until the next one. The placeholders `{number}`, `{type}` and `{due}` are
filled in the user's language when the template is sent; anything else is sent as written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bot.core.formatting import fmt_date
from bot.core.i18n import translator
from bot.core.policy import PolicyPack
from storage.models import AnswerTemplate, Request

REQUIRED = ("ru", "en")
MAX_NAME = 64
MAX_TEXT = 3000  # leaves room for the header of the relayed message within Telegram's 4096
MAX_TEMPLATES = 50  # every one is a button under the picker
PLACEHOLDERS = ("number", "type", "due")


@dataclass(frozen=True)
class Draft:
    name: str
    texts: dict[str, str]


def parse(args: str) -> Draft | None:
    """`<name>\\nru: text\\nen: text` -> a draft; None if a part is missing or too long."""
    first, _, rest = args.partition("\n")
    name = first.strip()
    texts: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in rest.split("\n"):
        code, sep, text = line.partition(":")
        if sep and code.strip().lower() in REQUIRED:
            current = texts.setdefault(code.strip().lower(), [])
            current.append(text.strip())
        elif current is not None:
            current.append(line.rstrip())
    joined = {code: "\n".join(lines).strip() for code, lines in texts.items()}
    if not name or len(name) > MAX_NAME:
        return None
    if any(not joined.get(code) or len(joined[code]) > MAX_TEXT for code in REQUIRED):
        return None
    return Draft(name, joined)


def texts_of(template: AnswerTemplate) -> dict[str, str]:
    return dict(json.loads(template.texts))


def render(template: AnswerTemplate, request: Request, locale: str, pack: PolicyPack) -> str:
    """The template in `locale` (else the first required language), placeholders filled."""
    texts = texts_of(template)
    text = texts.get(locale) or texts[REQUIRED[0]]
    t = translator(locale)
    values = {
        "number": str(request.id),
        "type": t(f"rights.{request.type}"),
        "due": fmt_date(request.due_at, t, pack.zone),
    }
    for key in PLACEHOLDERS:
        text = text.replace(f"{{{key}}}", values[key])
    return text
