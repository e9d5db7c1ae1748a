"""Logging that never carries the bot token or another secret, in a message or in a traceback
(nor, by convention, texts, names or phones)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from yarl import URL

from bot.core.systems import System

_FORMAT = logging.Formatter()


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self._secrets):
            record.msg, record.args = self._redact(message), None
        # A traceback is text too: an exception's message may carry a URL with `bot<TOKEN>`.
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMAT.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        return True


def system_secrets(systems: Iterable[System], environ: Mapping[str, str]) -> list[str]:
    """Values of the operator's systems no log line may carry: each system's URL and secret as
    set in the environment (`url_env`, `secret_env`), and a URL's password as written and as
    decoded."""
    values: list[str] = []
    for system in systems:
        for name in (system.url_env, system.secret_env):
            value = environ.get(name) if name else None
            if not value or not value.strip():
                continue
            values.append(value)
            if name == system.url_env:
                try:
                    parsed = URL(value)
                except ValueError:
                    continue
                values += [p for p in (parsed.raw_password, parsed.password) if p]
    return values


def setup_logging(level: str, secrets: list[str]) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # These libraries log SQL parameters (names, texts) at DEBUG: never let them.
    for noisy in ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
