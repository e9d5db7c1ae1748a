"""Campaign messages: a marketing message with the line that says why the user gets it."""

from __future__ import annotations

from html import escape


def campaign_text(reason: str, body_html: str) -> str:
    """A marketing message: the first line says why the user gets it (GDPR pack, mailings)."""
    return f"<i>{escape(reason)}</i>\n\n{body_html}"
