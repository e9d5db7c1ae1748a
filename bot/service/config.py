"""Settings, read from the environment or a `.env` file."""

from __future__ import annotations

import os
import re
from datetime import time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from yarl import URL

from bot.core.errors import ConfigError, describe_validation_error
from bot.core.i18n import LOCALES
from bot.core.roles import Role
from storage.chain import chain_key as evidence_chain_key
from storage.crypto import KeyProblem, MasterKeys, parse_master_key

Locale = str  # a language with a catalog in locales/ (see bot.core.i18n.LOCALES)
TELEGRAM_API = "https://api.telegram.org"
_TOKEN_RE = re.compile(r"^\d{3,}:[\w-]{20,}$")
PLACEHOLDER_SECRET = "replace-with-a-long-random-string"  # the value in .env.example
MAX_CHAT_ID = 2**52  # Telegram: chat IDs have at most 52 significant bits
DEFAULT_LISTEN = "0.0.0.0:8080"
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_SHORT_NAME_RE = re.compile(r"^[A-Za-z0-9_]{3,64}$")


class Settings(BaseSettings):
    """Every setting the bot reads. README lists them with their defaults."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr
    admin_chat_id: int
    pseudonym_secret: Annotated[SecretStr, Field(min_length=16)]
    pseudonym_secret_file: Path | None = None  # read into pseudonym_secret (`python -m bot setup`)
    staff_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    # Who is told privately when the desk cannot reach the admin group, and when it can again.
    owner_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    staff_roles: Annotated[dict[int, Role], NoDecode] = Field(default_factory=dict)
    group_admin_role: Role | Literal["none"] = Role.DPO
    database_url: str = "sqlite+aiosqlite:///data/bot.db"
    policy_pack: str = "by_99z_sports"
    telegram_api_url: str = TELEGRAM_API
    default_locale: Locale = "ru"
    admin_locale: Locale | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    broadcast_rate: Annotated[float, Field(gt=0, le=30)] = 25.0
    # Messages a minute posted to the admin group, all instances together; 0: not paced.
    staff_rate: Annotated[float, Field(ge=0, le=60)] = 20.0
    reminder_time: time = time(9, 0)
    # The master key that wraps every person's data key: base64 of 32 bytes, given directly or
    # in a file. The previous key is only for a rotation in progress (README, "Encryption").
    data_key: SecretStr | None = None
    data_key_file: Path | None = None
    data_key_previous: SecretStr | None = None
    data_key_previous_file: Path | None = None
    redis_url: str | None = None
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str | None = None
    outbox_stuck_after: Annotated[int, Field(gt=0)] = 600
    # The public https:// base URL of the bot's web server, as the operator's webhook systems
    # reach it: their callbacks go to <it>/systems/<id>/callback. Empty: they must answer 200.
    systems_callback_url: str | None = None
    # The desk Mini App (bot.service.desk_app): the public https:// base URL of the bot's web
    # server (the app is at <it>/desk/; empty: no app), the app's short name registered with
    # BotFather (the cards' "Open in the app" link; empty: no link), and how old Telegram's
    # signed init data may be, in seconds.
    webapp_url: str | None = None
    webapp_short_name: str = ""
    webapp_max_age: Annotated[int, Field(gt=0, le=86400)] = 3600

    def secrets(self) -> list[str]:
        """Values no log line may carry (`RedactSecrets` in bot.service.logs): keys, tokens,
        passwords."""
        values = [
            secret.get_secret_value()
            for secret in (
                self.bot_token,
                self.pseudonym_secret,
                self.data_key,
                self.data_key_previous,
                self.webhook_secret,
            )
            if secret is not None
        ]
        for url in filter(None, (self.database_url, self.redis_url)):
            parsed = URL(url)  # a password as written and as decoded
            values += [p for p in (parsed.raw_password, parsed.password) if p]
        return [value for value in values if value.strip()]

    @model_validator(mode="before")
    @classmethod
    def _pseudonym_secret_file(cls, data: object) -> object:
        """PSEUDONYM_SECRET_FILE: the secret read from a file (as DATA_KEY_FILE is)."""
        if not isinstance(data, dict) or not data.get("pseudonym_secret_file"):
            return data
        if data.get("pseudonym_secret"):
            raise ValueError("set PSEUDONYM_SECRET or PSEUDONYM_SECRET_FILE, not both")
        path = Path(str(data["pseudonym_secret_file"]))
        try:
            secret = path.read_text("utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not a text file"
            raise ValueError(f"PSEUDONYM_SECRET_FILE {path} cannot be read: {reason}") from None
        return {**data, "pseudonym_secret": secret}

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if not looks_like_token(value.get_secret_value()):
            # Never echo the value: it is a secret.
            raise ValueError("does not look like a token from @BotFather (digits:letters)")
        return value

    @field_validator("pseudonym_secret")
    @classmethod
    def _real_secret(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if not secret.strip():
            raise ValueError("is only whitespace; set a long random string")
        if secret.strip() == PLACEHOLDER_SECRET:
            raise ValueError("is the example's placeholder; set a long random string")
        return value

    @field_validator("admin_chat_id")
    @classmethod
    def _chat_id_range(cls, value: int) -> int:
        if value == 0 or abs(value) >= MAX_CHAT_ID:
            raise ValueError("is not a Telegram chat ID (e.g. -1001234567890)")
        return value

    @field_validator("staff_ids", "owner_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("default_locale", "admin_locale")
    @classmethod
    def _known_locale(cls, value: str | None) -> str | None:
        if value is not None and value not in LOCALES:
            raise ValueError(f"must be one of {', '.join(LOCALES)} (a file in locales/)")
        return value

    @field_validator("staff_roles", mode="before")
    @classmethod
    def _split_roles(cls, value: object) -> object:
        """`111:dpo,222:agent` -> {111: "dpo", 222: "agent"}."""
        if not isinstance(value, str):
            return value
        roles: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in value.split(","))):
            user_id, sep, role = part.partition(":")
            if not sep:
                raise ValueError("must look like 111:dpo,222:agent")
            roles[user_id.strip()] = role.strip().lower()
        return roles

    @property
    def admin_role(self) -> Role | None:
        """The role the admin group's administrators and STAFF_IDS have by default."""
        return None if self.group_admin_role == "none" else Role(self.group_admin_role)

    @field_validator("telegram_api_url")
    @classmethod
    def _url_shape(cls, value: str) -> str:
        """Checked here, where the token is not yet part of it: aiohttp's own error would
        print the whole request URL, `bot<TOKEN>` included."""
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        try:
            url = URL(value)
            valid = bool(url.host) and url.port is not None and not url.query_string
        except ValueError:
            valid = False
        if not valid or any(c.isspace() for c in value):
            raise ValueError("is not a valid URL (e.g. https://api.telegram.org)")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "is not a database URL (e.g. sqlite+aiosqlite:///data/bot.db)"
            ) from None
        try:
            dialect = url.get_dialect()
            dialect.import_dbapi()
        except (ArgumentError, ImportError) as error:
            name = getattr(error, "name", None) or url.drivername
            raise ValueError(f"needs the driver {name}, which is not installed") from None
        if dialect.is_async is False and url.drivername == "sqlite":
            raise ValueError("needs an async driver: use sqlite+aiosqlite:///...")
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            raise ValueError("is an in-memory database: everything would be lost at exit")
        if url.get_backend_name() == "sqlite" and "mode=memory" in str(url.query):
            raise ValueError("is an in-memory database: everything would be lost at exit")
        return value

    def chain_key(self) -> bytes:
        """The evidence chain's key, derived from the pseudonym secret (storage.chain)."""
        return evidence_chain_key(self.pseudonym_secret.get_secret_value())

    def master_keys(self) -> MasterKeys:
        """The master keys, read and checked; ConfigError (one line, no key material) if the
        current one is missing or either is malformed."""
        try:
            current = _read_key(self.data_key, self.data_key_file, "DATA_KEY")
            previous = _read_key(
                self.data_key_previous, self.data_key_previous_file, "DATA_KEY_PREVIOUS"
            )
        except KeyProblem as problem:
            raise ConfigError(f"Configuration error: {problem}") from None
        if current is None:
            raise ConfigError(
                "Configuration error: DATA_KEY or DATA_KEY_FILE is required but not set "
                "(create a key with: openssl rand -base64 32)"
            )
        return MasterKeys(current, () if previous is None else (previous,))

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value and not value.startswith("https://"):
            raise ValueError("must be a public https:// URL (Telegram sends webhooks over HTTPS)")
        return value or None

    @field_validator("systems_callback_url")
    @classmethod
    def _systems_callback_url(cls, value: str | None) -> str | None:
        if value and not value.startswith("https://"):
            raise ValueError("must be a public https:// URL (the systems call back over HTTPS)")
        return value or None

    @field_validator("webapp_url")
    @classmethod
    def _webapp_url(cls, value: str | None) -> str | None:
        if value and not value.startswith("https://"):
            raise ValueError("must be a public https:// URL (Telegram opens Mini Apps over HTTPS)")
        return value.rstrip("/") or None if value else None

    @field_validator("webapp_short_name")
    @classmethod
    def _webapp_short_name(cls, value: str) -> str:
        if value and not _SHORT_NAME_RE.match(value):
            raise ValueError("must be the Mini App's short name: 3-64 characters A-Z, a-z, 0-9, _")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _SECRET_RE.match(value.get_secret_value()):
            raise ValueError("must be 1-256 characters A-Z, a-z, 0-9, _ or - (Telegram's rule)")
        return value

    @field_validator("webhook_listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if not value:
            return None
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port, e.g. 0.0.0.0:8080")
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError("WEBHOOK_SECRET is required with WEBHOOK_URL")
        if self.webhook_url and self.webhook_listen is None:
            self.webhook_listen = DEFAULT_LISTEN
        return self

    @property
    def webhook_host_port(self) -> tuple[str, int]:
        host, _, port = (self.webhook_listen or DEFAULT_LISTEN).rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def staff_locale(self) -> Locale:
        return self.admin_locale or self.default_locale

    def sqlite_path(self) -> Path | None:
        """The database file for an SQLite URL, None for other databases or memory."""
        prefix = "sqlite+aiosqlite:///"
        if not self.database_url.startswith(prefix):
            return None
        rest = self.database_url[len(prefix) :]
        if not rest or rest == ":memory:":
            return None
        return Path(rest)


def looks_like_token(token: str) -> bool:
    """The shape of a token from @BotFather (digits:letters); says nothing of its validity."""
    return bool(_TOKEN_RE.match(token))


def _read_key(value: SecretStr | None, path: Path | None, name: str) -> bytes | None:
    if value is not None and path is not None:
        raise KeyProblem(f"set {name} or {name}_FILE, not both")
    if path is not None:
        try:
            text = path.read_text("ascii")
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not a text file"
            raise KeyProblem(f"{name}_FILE {path} cannot be read: {reason}") from None
        return parse_master_key(text, f"{name}_FILE")
    if value is not None:
        return parse_master_key(value.get_secret_value(), name)
    return None


def check_writable(settings: Settings) -> None:
    """The SQLite file's directory must be creatable and writable (checked before anything
    else runs, so the operator gets one line instead of a traceback from deep inside)."""
    path = settings.sqlite_path()
    if path is None:
        return
    target = path.resolve()
    existing = next(p for p in (target, *target.parents) if p.exists())
    usable = (
        os.access(existing, os.W_OK)
        if existing == target
        else existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)
    )
    if not usable:
        raise ConfigError(f"Configuration error: DATABASE_URL {path} is not writable")
    try:  # access() may say yes (root; /proc) where the folder still cannot be made
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"Configuration error: DATABASE_URL {path}: its folder cannot be created "
            f"({error.strerror or type(error).__name__})"
        ) from None


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except UnicodeDecodeError as error:  # the .env file (pydantic-settings reads it as UTF-8)
        raise ConfigError(
            f"Configuration error: .env is not valid UTF-8 (byte {error.start}); save it as UTF-8"
        ) from None
    except ValidationError as error:
        raise ConfigError(
            "Configuration error: " + describe_validation_error(error, env_names=True)
        ) from None
