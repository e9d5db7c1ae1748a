"""What the external-database code is given and what it answers.

The description of a system's tables is read through Protocols that `bot.core.systems.Table`,
`Column`, `Identity` and `Parent` match structurally (storage/ never imports the bot): read-only
properties, so a pydantic model's attributes (StrEnum values are strings) satisfy them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

TELEGRAM_ID = "telegram_id"  # IdentitySpec.kind: the Telegram user ID
PHONE = "phone"  # IdentitySpec.kind: the phone the bot verified, "+<digits>"

DELETE = "delete"  # TableSpec.erase: the rows go
UPDATE = "update"  # TableSpec.erase: the rows stay, each field erased as its `erase` says

NULL = "null"  # ColumnSpec.erase: set to NULL
HASH = "hash"  # keyed hash of the old value (HMAC-SHA256 under the secret, hex)
TEXT = "text"  # the column's fixed `text`
KEEP = "keep"  # left as it is

HASH_LENGTH = 64  # characters of a hex HMAC-SHA256


class IdentitySpec(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def column(self) -> str: ...


class ParentSpec(Protocol):
    @property
    def table(self) -> str: ...
    @property
    def column(self) -> str: ...


class ColumnSpec(Protocol):
    @property
    def column(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def erase(self) -> str: ...
    @property
    def text(self) -> str | None: ...  # what TEXT writes
    @property
    def corrects(self) -> str | None: ...


class TableSpec(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def key(self) -> str | None: ...
    @property
    def identity(self) -> IdentitySpec | None: ...
    @property
    def parent(self) -> ParentSpec | None: ...
    @property
    def fields(self) -> Sequence[ColumnSpec]: ...
    @property
    def erase(self) -> str: ...
    @property
    def restrict(self) -> str | None: ...


@dataclass(frozen=True)
class Person:
    """Whose rows: their Telegram user ID, and the phone the bot verified ("+<digits>")."""

    telegram_id: int
    phone: str | None = None


@dataclass(frozen=True)
class Read:
    """What access read: per table, its rows' listed fields (JSON-safe values), and counts."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Changed:
    """What an erasure, correction or restriction changed: rows per table (only the tables it
    touched), and the tables whose rows stay (erase = "update")."""

    counts: dict[str, int] = field(default_factory=dict)
    kept: tuple[str, ...] = ()


@dataclass(frozen=True)
class Preview:
    """A dry run, per table: the rows access would read, and the rows erasure would change."""

    reads: dict[str, int] = field(default_factory=dict)
    erases: dict[str, int] = field(default_factory=dict)
