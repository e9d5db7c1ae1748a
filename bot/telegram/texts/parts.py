"""Telegram's limit on one message: a long text split at line ends into parts it accepts."""

from __future__ import annotations


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
