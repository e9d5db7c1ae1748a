"""Every string a person reads comes from locales/<lang>.toml through a Translator.

The catalogs stay TOML (one file per language; adding a language is adding a file). Each string
is compiled into a Fluent message (`fluent.runtime`), so plural forms follow the language's CLDR
rules: a string may select on a number,

    days = \"\"\"{ $count ->
        [one] {$count} день
        [few] {$count} дня
       *[many] {$count} дней
    }\"\"\"

while `{name}` placeholders work as they always did. A key missing in a language falls back to
the default language (`set_fallback`, Russian unless configured); `missing_keys()` lists the gaps
and the app reports them once at start.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from fluent.runtime import FluentBundle, resolver
from fluent.runtime.types import fluent_number
from fluent.syntax import FluentParser
from fluent.syntax import ast as ftl

LOCALES_DIR = Path(__file__).resolve().parents[2] / "locales"
# fluent.runtime refuses a placeable longer than 2500 characters (a guard against runaway
# recursion). Ours are bounded by Telegram's 4096 visible characters (a staff reply may be 3500,
# a campaign preview nearly 4000), and HTML escaping (&quot; for ") can make that six times
# longer in the source: allow a whole message, no more.
resolver.MAX_PART_LENGTH = 4096 * 8
DEFAULT_FALLBACK = "ru"
# Telegram languages read in Russian when there is no catalog of their own.
READ_IN_RUSSIAN = frozenset({"be", "uk", "kk"})


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def _available(directory: Path) -> tuple[str, ...]:
    codes = sorted(path.stem for path in directory.glob("*.toml"))
    return tuple(sorted(codes, key=lambda code: code != DEFAULT_FALLBACK))


LOCALES: tuple[str, ...] = _available(LOCALES_DIR)
_fallback = DEFAULT_FALLBACK
_parser = FluentParser(with_spans=False)


def set_fallback(locale: str) -> None:
    """The language a key missing elsewhere is taken from (the operator's default language)."""
    global _fallback
    if locale not in LOCALES:
        raise ValueError(f"unsupported locale {locale!r}")
    _fallback = locale


def fallback() -> str:
    return _fallback


@cache
def catalog(locale: str, directory: Path = LOCALES_DIR) -> dict[str, str]:
    """The raw strings of one language, keyed `section.name`."""
    path = directory / f"{locale}.toml"
    return _flatten(tomllib.loads(path.read_text(encoding="utf-8")))


# --- TOML string -> Fluent pattern ---------------------------------------------------------


def _split(text: str) -> list[tuple[bool, str]]:
    """Top-level literal text and `{...}` placeables (braces balanced, quotes respected)."""
    parts: list[tuple[bool, str]] = []
    depth, start, quoted = 0, 0, False
    for index, char in enumerate(text):
        if depth and char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char == "{":
            if depth == 0:
                if index > start:
                    parts.append((False, text[start:index]))
                start = index
            depth += 1
        elif char == "}" and depth:
            depth -= 1
            if depth == 0:
                parts.append((True, text[start : index + 1]))
                start = index + 1
    if depth:
        raise ValueError("unbalanced { in string")
    if start < len(text):
        parts.append((False, text[start:]))
    return parts


def _simple_name(source: str) -> str | None:
    inner = source[1:-1].strip()
    return inner if inner.isidentifier() else None


def _placeable(source: str) -> ftl.PatternElement:
    """`{name}` is a variable; anything else is parsed as Fluent (`{ $n -> ... }`), where a
    `{name}` inside a variant is a variable too."""
    if (name := _simple_name(source)) is not None:
        return ftl.Placeable(ftl.VariableReference(ftl.Identifier(name)))
    converted = "".join(
        f"{{ ${name} }}" if is_placeable and (name := _simple_name(part)) else part
        for is_placeable, part in _split(source[1:-1])
    )
    body = "\n".join("    " + line for line in ("{" + converted + "}").split("\n"))
    resource = _parser.parse(f"x =\n{body}\n")
    entry = resource.body[0] if resource.body else None
    if not isinstance(entry, ftl.Message) or entry.value is None:
        raise ValueError(f"not a Fluent expression: {source[:60]!r}")
    [element] = [e for e in entry.value.elements if isinstance(e, ftl.Placeable)]
    return element


def compile_message(key: str, text: str) -> ftl.Message:
    elements: list[ftl.PatternElement] = []
    try:
        for is_placeable, part in _split(text):
            elements.append(_placeable(part) if is_placeable else ftl.TextElement(part))
    except ValueError as error:
        raise ValueError(f"locale string {key!r}: {error}") from None
    return ftl.Message(ftl.Identifier(key), ftl.Pattern(elements))


@cache
def bundle(locale: str, directory: Path = LOCALES_DIR) -> FluentBundle:
    compiled = FluentBundle([locale], use_isolating=False)
    messages = [compile_message(k, v) for k, v in catalog(locale, directory).items()]
    compiled.add_resource(ftl.Resource(messages))  # type: ignore[arg-type]
    return compiled


def _argument(value: object) -> Any:
    """Numbers stay numbers (for plural rules), without digit grouping: IDs read as written."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, int):
        return fluent_number(value, useGrouping=False)
    return fluent_number(value, useGrouping=False, maximumFractionDigits=1)


class Translator:
    """Looks up keys in one locale; `t("age.question")`, `t("card.due_title", count=21)`."""

    def __init__(self, locale: str, directory: Path = LOCALES_DIR) -> None:
        if locale not in _available(directory):
            raise ValueError(f"unsupported locale {locale!r}")
        self.locale = locale
        self._directory = directory
        # Strings without variables in this locale, formatted once (not those read in the
        # fallback language, which set_fallback may change).
        self._plain: dict[str, str] = {}

    def __call__(self, key: str, /, **values: object) -> str:
        if values:
            return self._format(key, values)
        text = self._plain.get(key)
        if text is None:
            text = self._format(key, values)
            if bundle(self.locale, self._directory).has_message(key):
                self._plain[key] = text
        return text

    def _format(self, key: str, values: dict[str, object]) -> str:
        for locale in (self.locale, _fallback):
            compiled = bundle(locale, self._directory)
            if compiled.has_message(key):
                break
        else:
            raise KeyError(f"missing string {key!r} in locale {self.locale!r}")
        message = compiled.get_message(key)
        assert message.value is not None
        args = {name: _argument(value) for name, value in values.items()}
        text, errors = compiled.format_pattern(message.value, args)
        if errors:
            raise ValueError(f"string {key!r} in {locale!r}: {errors[0]}")
        return str(text)


def missing_keys(directory: Path = LOCALES_DIR) -> dict[str, list[str]]:
    """Per language, the keys it lacks compared with the fallback language."""
    reference = set(catalog(_fallback, directory))
    gaps = {}
    for locale in _available(directory):
        missing = sorted(reference - set(catalog(locale, directory)))
        if missing:
            gaps[locale] = missing
    return gaps


def locale_from_telegram(language_code: str | None, default: str) -> str:
    """The user's language when there is a catalog for it; Russian for be/uk/kk users; English
    for every other language Telegram reports."""
    if not language_code:
        return default
    base = language_code.split("-")[0].lower()
    if base in LOCALES:
        return base
    if base in READ_IN_RUSSIAN and "ru" in LOCALES:
        return "ru"
    return "en" if "en" in LOCALES else default


@cache
def translator(locale: str) -> Translator:
    return Translator(locale)
