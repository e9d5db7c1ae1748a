"""Callback data. Prefixes carry a version so buttons from an older release are recognised as
stale instead of misread. Nothing in them is trusted: handlers check every value against the
sender (Telegram authenticates `from_user`) and the database."""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData

from bot.onboarding import AgeGroup


class AgeCb(CallbackData, prefix="v1age"):
    answer: AgeGroup


class LangCb(CallbackData, prefix="v1lang"):
    code: str


class MenuAction(StrEnum):
    NOTICE = "notice"
    LANGUAGE = "language"
    HELP = "help"
    GUARDIAN_LINK = "guardian"
    HOME = "home"


class MenuCb(CallbackData, prefix="v1menu"):
    action: MenuAction


class GuardianAction(StrEnum):
    ADULT = "adult"
    MINOR = "minor"
    CONFIRM = "confirm"
    CANCEL = "cancel"


class GuardianCb(CallbackData, prefix="v1rep"):
    action: GuardianAction
