"""What Telegram's answers mean for an outbox item: a permanent failure, a person erased while
their item was on its way, and the error messages the worker tells apart."""

from __future__ import annotations

from aiogram.exceptions import TelegramBadRequest

# Telegram's answers when a message cannot be copied at all (deleted, protected, invalid).
UNCOPIABLE = ("message to copy not found", "can't be copied", "message_id_invalid")


class Permanent(Exception):
    """Telegram would answer the same again: the item fails now."""


class ErasedMeanwhile(Exception):
    """The person was erased while their item was on its way: its rows are gone. What was
    just posted into the admin group (`chat_id`, `message_id`; None when nothing was) must go
    too, as the erasure's own redactions could not know of it."""

    def __init__(self, chat_id: int | None = None, message_id: int | None = None) -> None:
        super().__init__("erased while on its way")
        self.chat_id, self.message_id = chat_id, message_id


def nothing_to_edit(error: TelegramBadRequest) -> bool:
    """An edit that is already done, or whose message is gone, has nothing left to do."""
    return "not modified" in error.message or "message to edit not found" in error.message


def group_missing(error: TelegramBadRequest) -> bool:
    return "chat not found" in error.message


def uncopiable(error: TelegramBadRequest) -> bool:
    return any(s in error.message.lower() for s in UNCOPIABLE)
