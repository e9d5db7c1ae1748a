"""Lists that page: a page of any list, and the Previous/Next buttons that move through it
(the message is edited in place). Every page fits one Telegram message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Generic, TypeVar

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from pydantic import Field

from bot.core.i18n import Translator

PAGE_SIZE = 20
T = TypeVar("T")


class PagedList(StrEnum):
    DUE = "due"  # open requests by due date (admin group)
    REQUESTS = "req"  # the user's own requests


class PageCb(CallbackData, prefix="v1page"):
    list: PagedList
    page: Annotated[int, Field(ge=0, le=100_000)]


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    number: int  # from 0
    pages: int
    total: int

    @property
    def first(self) -> int:
        """1-based position of the first item on this page."""
        return self.number * PAGE_SIZE + 1 if self.items else 0


def page_of(items: Sequence[T], number: int, size: int = PAGE_SIZE) -> Page[T]:
    """Page `number` (clamped to the pages that exist) of `items`."""
    pages = max(1, -(-len(items) // size))
    number = min(max(number, 0), pages - 1)
    return Page(items[number * size : (number + 1) * size], number, pages, len(items))


def footer(page: Page[object], t: Translator) -> str:
    return t("common.page", page=page.number + 1, pages=page.pages, total=page.total)


def pager(page: Page[object], t: Translator, kind: PagedList) -> InlineKeyboardMarkup | None:
    """Previous/Next for a list of more than one page; None when it fits one."""
    if page.pages <= 1:
        return None
    row = []
    if page.number > 0:
        data = PageCb(list=kind, page=page.number - 1).pack()
        row.append(InlineKeyboardButton(text=t("common.previous"), callback_data=data))
    if page.number < page.pages - 1:
        data = PageCb(list=kind, page=page.number + 1).pack()
        row.append(InlineKeyboardButton(text=t("common.next"), callback_data=data))
    return InlineKeyboardMarkup(inline_keyboard=[row])
