"""Files on requests, both ways: a user's document or photo reaches the card, a staff member's
reaches the user. Telegram copies them (`copyMessage`): the bot never downloads a file, and the
database keeps only where the message is, its type and its size.

Limits: 20 MB per file (the most a bot can fetch through the Bot API, so the operator can always
archive what it received) and captions within Telegram's 1024 characters. Anything else (stickers,
voice, video, locations, polls, protected content) is refused with a clear answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from html import escape

from aiogram.types import Message

MAX_BYTES = 20 * 1024 * 1024
MAX_CAPTION = 1024


class AttachmentKind(StrEnum):
    DOCUMENT = "document"
    PHOTO = "photo"


class Refusal(StrEnum):
    UNSUPPORTED = "unsupported"
    PROTECTED = "protected"
    TOO_BIG = "too_big"


@dataclass(frozen=True)
class Attachment:
    kind: AttachmentKind
    size: int | None  # bytes, as Telegram reports it


def attachment_of(message: Message) -> Attachment | Refusal:
    """The file a message carries, or why it cannot be relayed."""
    if message.document is not None:
        found = Attachment(AttachmentKind.DOCUMENT, message.document.file_size)
    elif message.photo:
        found = Attachment(AttachmentKind.PHOTO, message.photo[-1].file_size)
    else:
        return Refusal.UNSUPPORTED
    if message.has_protected_content:
        return Refusal.PROTECTED
    if found.size is not None and found.size > MAX_BYTES:
        return Refusal.TOO_BIG
    return found


def megabytes(size: int | None) -> float | str:
    """The size in MB, a number the translator writes the language's way (0,1 in Russian)."""
    return "—" if size is None else round(size / 1024 / 1024, 1)


def fit_caption(header: str, caption: str | None) -> str:
    """`header` (plain text, already escaped for HTML) and the sender's caption, escaped and cut
    so the visible text stays within Telegram's caption limit."""
    if not caption:
        return header
    room = MAX_CAPTION - len(header) - 1
    if len(caption) > room:
        caption = caption[: max(room - 1, 0)] + "…"
    return f"{header}\n{escape(caption)}"
