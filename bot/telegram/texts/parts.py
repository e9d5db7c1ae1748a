"""Telegram's limit on one message: a long text split at line ends into parts it accepts."""

from __future__ import annotations

import html
import re

# Telegram takes 4096 visible characters in one message; a margin for what it counts apart.
MESSAGE_ROOM = 4000


def visible_length(text: str) -> int:
    """The length of an HTML message as Telegram counts it: tags out, entities as one."""
    return len(html.unescape(re.sub(r"<[^>]*>", "", text)))


def split_message(text: str, limit: int = 4000) -> list[str]:
    """Split a long text at line ends into parts Telegram accepts."""
    parts, current = [], ""
    for line in text.split("\n"):
        if current and len(current) + 1 + len(line) > limit:
            parts.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        parts.append(current)
    return parts
