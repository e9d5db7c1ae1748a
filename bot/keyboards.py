"""Inline keyboards. Labels come from the locale catalogs."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import AgeCb, GuardianAction, GuardianCb, LangCb, MenuAction, MenuCb
from bot.i18n import LOCALES, Translator
from bot.onboarding import AgeGroup
from bot.policy import PolicyPack


def age_gate(t: Translator, answers: list[AgeGroup], age: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for answer in answers:
        builder.button(text=t(f"age.{answer}", age=age), callback_data=AgeCb(answer=answer))
    other = "en" if t.locale == "ru" else "ru"
    builder.button(text=t("age.switch_language"), callback_data=LangCb(code=other))
    builder.adjust(1)
    return builder.as_markup()


def notice(t: Translator, pack: PolicyPack) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t("notice.full_text"), url=pack.policy.url)]]
    )


def menu(t: Translator, *, guardian_link: bool) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=t("menu.notice"), callback_data=MenuCb(action=MenuAction.NOTICE))
    if guardian_link:
        builder.button(
            text=t("menu.guardian_link"), callback_data=MenuCb(action=MenuAction.GUARDIAN_LINK)
        )
    builder.button(text=t("menu.language"), callback_data=MenuCb(action=MenuAction.LANGUAGE))
    builder.button(text=t("menu.help"), callback_data=MenuCb(action=MenuAction.HELP))
    builder.adjust(1)
    return builder.as_markup()


def languages(t: Translator) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for code in LOCALES:
        builder.button(text=t(f"language.{code}"), callback_data=LangCb(code=code))
    builder.button(text=t("common.back"), callback_data=MenuCb(action=MenuAction.HOME))
    builder.adjust(2, 1)
    return builder.as_markup()


def guardian_age(t: Translator, age: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=t("guardian.adult", age=age), callback_data=GuardianCb(action=GuardianAction.ADULT)
    )
    builder.button(
        text=t("guardian.minor", age=age), callback_data=GuardianCb(action=GuardianAction.MINOR)
    )
    builder.button(text=t("common.cancel"), callback_data=GuardianCb(action=GuardianAction.CANCEL))
    builder.adjust(1)
    return builder.as_markup()


def guardian_confirm(t: Translator) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=t("guardian.confirm"), callback_data=GuardianCb(action=GuardianAction.CONFIRM)
    )
    builder.button(text=t("common.cancel"), callback_data=GuardianCb(action=GuardianAction.CANCEL))
    builder.adjust(1)
    return builder.as_markup()
