"""Plural forms come from Fluent (CLDR rules through fluent.runtime), not from hand-written code;
a missing key falls back to the default language and is reported at start."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest

from bot.core import i18n
from bot.core.i18n import Translator, catalog, locale_from_telegram, missing_keys, translator
from tests.fake_telegram import FakeTelegram
from tests.kit import Harness

RU_FORMS = {1: 0, 2: 1, 5: 2, 11: 2, 21: 0, 22: 1, 25: 2}  # number -> one / few / many


def test_russian_days_requests_and_users() -> None:
    t = translator("ru")
    cases = {
        "days": (
            lambda n: t(
                "card.due", when="01.12.2026", days=n, kind=t("card.days_calendar", days=n)
            ),
            ("календарный день", "календарных дня", "календарных дней"),
        ),
        "working days": (
            lambda n: t("flow.days_working", days=n),
            ("рабочий день", "рабочих дня", "рабочих дней"),
        ),
        "requests": (
            lambda n: t("card.register_caption", count=n, when="x"),
            ("заявление", "заявления", "заявлений"),
        ),
        "users": (
            lambda n: t("stats.consents", users=n),
            ("пользователь", "пользователя", "пользователей"),
        ),
    }
    for name, (text, forms) in cases.items():
        for number, form in RU_FORMS.items():
            rendered = text(number)
            expected = forms[form]
            if name == "days":
                assert f"({number} {expected})" in rendered, (name, number, rendered)
            elif name == "working days":
                assert rendered == expected, (name, number, rendered)
            else:
                assert re.search(rf"\b{number} {expected}\b", rendered), (name, number, rendered)
    assert t("stats.median", days=4.5) == "Медиана до закрытия: 4,5 дня"


def test_russian_counts_in_staff_messages() -> None:
    """Every staff text that puts a number before a noun agrees with it (breach notices, the
    policy announcement, length refusals, the file limit)."""
    t = translator("ru")
    cases = {
        lambda n: t("breach.button_send", count=n): (
            "пользователю",
            "пользователям",
            "пользователям",
        ),
        lambda n: t("breach.preview", count=n): ("пользователь", "пользователя", "пользователей"),
        lambda n: t("policy_next.staff", version="1.1", date="x", count=n): (
            "пользователю",
            "пользователям",
            "пользователям",
        ),
        lambda n: t("card.too_long", length=n, limit=1000): ("символ", "символа", "символов"),
        lambda n: t("attach.flow_full", limit=n): ("файла", "файлов", "файлов"),
    }
    for text, forms in cases.items():
        for number, form in RU_FORMS.items():
            rendered = text(number)
            assert re.search(rf"\b{number} {forms[form]}\b", rendered), (number, rendered)
    assert "получит 21 пользователь" in t("breach.preview", count=21)
    en = translator("en")
    assert en("breach.button_send", count=1) == "📣 Send to 1 user"
    assert "of what 1 user will receive" in en("breach.preview", count=1)
    assert en("breach.register_caption", count=1, when="x").startswith("Breach register: 1 breach,")
    assert "announced to 21 users" in en("policy_next.staff", version="1", date="x", count=21)


def test_english_plurals_and_numbers_read_as_written() -> None:
    t = translator("en")
    assert t("card.register_caption", count=1, when="x").startswith(
        "Register of all requests: 1 request,"
    )
    assert "21 requests" in t("card.register_caption", count=21, when="x")
    assert t("flow.too_long", length=1, limit=1000).startswith("That is 1 character;")
    # Telegram IDs and request numbers are never grouped ("1 234 567") by the number formatter.
    assert "#1234567 " in t("card.title", id=1234567, type="access") + " "


def test_every_string_renders_as_written() -> None:
    """Strings without a selector come out exactly as str.format would make them."""
    for locale in i18n.LOCALES:
        t = Translator(locale)
        for key, raw in catalog(locale).items():
            if "->" in raw:
                continue
            names = set(re.findall(r"\{(\w+)\}", raw))
            values = {name: f"<{name}>" for name in names}
            assert t(key, **values) == raw.format(**values), (locale, key)


def test_a_new_language_is_a_file_and_falls_back(tmp_path: Path) -> None:
    for code in ("ru", "en"):
        shutil.copy(i18n.LOCALES_DIR / f"{code}.toml", tmp_path / f"{code}.toml")
    (tmp_path / "de.toml").write_text(
        '[common]\ncancel = "✖ Abbrechen"\n[card]\nregister_caption = """Register: { $count ->\n'
        '    [one] {$count} Antrag\n   *[other] {$count} Anträge\n}, {when}."""\n',
        encoding="utf-8",
    )
    german = Translator("de", tmp_path)
    assert german("common.cancel") == "✖ Abbrechen"
    assert german("card.register_caption", count=2, when="heute") == "Register: 2 Anträge, heute."
    assert german("common.back") == "← Назад"  # missing: the default language
    gaps = missing_keys(tmp_path)
    assert set(gaps) == {"de"} and "common.back" in gaps["de"] and "common.cancel" not in gaps["de"]
    with pytest.raises(ValueError):
        Translator("xx", tmp_path)


def test_language_of_a_telegram_user() -> None:
    assert locale_from_telegram("uk", "ru") == "ru"
    assert locale_from_telegram("en-GB", "ru") == "en"
    assert locale_from_telegram("de", "ru") == "en"  # no German catalog shipped
    assert locale_from_telegram(None, "ru") == "ru"


async def test_missing_keys_are_reported_once_at_start(
    fake: FakeTelegram,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(i18n, "missing_keys", lambda: {"de": ["common.back", "menu.title"]})
    caplog.set_level(logging.WARNING)
    bot = Harness(fake, tmp_path)
    await bot.start()
    await bot.stop()
    reports = [r.getMessage() for r in caplog.records if "falls back" in r.getMessage()]
    assert reports == ["Locale de lacks 2 keys (falls back to ru): common.back, menu.title"]


def test_russian_ages() -> None:
    t = translator("ru")
    assert t("age.adult", age=16) == "16 лет или старше"
    assert t("age.adult", age=21) == "21 год или старше"
    assert t("age.adult", age=22) == "22 года или старше"
    assert t("age.minor", age=21) == "Младше 21 года"
    assert t("age.minor", age=16) == "Младше 16 лет"
    assert t("guardian.too_young", age=18).endswith("не моложе 18 лет. Ничего не записано.")
