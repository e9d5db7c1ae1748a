"""Every string a person reads comes from locales/<lang>.toml through a Translator."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
LOCALES = ("ru", "en")


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


@cache
def catalog(locale: str) -> dict[str, str]:
    path = LOCALES_DIR / f"{locale}.toml"
    return _flatten(tomllib.loads(path.read_text(encoding="utf-8")))


class Translator:
    """Looks up keys in one locale; `t("age.question")`, `t("notice.version", version="1.0")`."""

    def __init__(self, locale: str) -> None:
        if locale not in LOCALES:
            raise ValueError(f"unsupported locale {locale!r}")
        self.locale = locale
        self._strings = catalog(locale)

    def __call__(self, key: str, /, **values: object) -> str:
        try:
            template = self._strings[key]
        except KeyError:
            raise KeyError(f"missing string {key!r} in locale {self.locale!r}") from None
        return template.format(**values) if values else template


def locale_from_telegram(language_code: str | None, default: str) -> str:
    """Russian for ru/be/uk/kk users, English for every other language Telegram reports."""
    if not language_code:
        return default
    base = language_code.split("-")[0].lower()
    if base in {"ru", "be", "uk", "kk"}:
        return "ru"
    return "en"


@cache
def translator(locale: str) -> Translator:
    return Translator(locale)
