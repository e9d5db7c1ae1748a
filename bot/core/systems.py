"""The operator's own systems, as the pack describes them (`[[systems]]`): where a person's data
lives besides the bot, and what each kind of request does there. Plain, validated data; the
connectors that act on it are `bot.domain.systems`'s.

Three kinds:
- `sql`: a database reached through an SQLAlchemy async URL read from the environment variable
  `url_env` (credentials never in the pack). Its tables are found by walking from the person's
  identity: a table names the column that holds the Telegram user ID or the verified phone
  (`identity`), or the column that refers to an already identified table's key (`parent`).
- `webhook`: the operator's HTTPS endpoint (`url_env`, `secret_env`): a signed JSON job per
  request, a JSON result back (now, or later on the bot's callback path).
- `manual`: only a person can act on it (a paper archive, a vendor's portal): staff tick it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from bot.core.law import NonEmpty, Text, _Model

Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
# A table or column name as the operator's database spells it: checked against the reflected
# schema at start, and only ever used as a quoted identifier, never pasted into SQL.
SqlName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,63}$")]


class SystemKind(StrEnum):
    SQL = "sql"
    WEBHOOK = "webhook"
    MANUAL = "manual"


class IdentityKind(StrEnum):
    """What identifies the person in a table: their Telegram user ID, or the phone the bot
    verified through Telegram's contact button (as "+<digits>")."""

    TELEGRAM_ID = "telegram_id"
    PHONE = "phone"


class TableErasure(StrEnum):
    """What erasure does to a table's rows of the person."""

    DELETE = "delete"  # the rows go
    UPDATE = "update"  # the rows stay; each field is erased as its own `erase` says


class FieldErasure(StrEnum):
    """What erasure does to one field where the rows stay."""

    NULL = "null"  # set to NULL
    HASH = "hash"  # replaced by a keyed hash (the bot's pseudonym secret): stable, not reversible
    TEXT = "text"  # replaced by the field's fixed `text`
    KEEP = "keep"  # left as it is (not personal, or kept by law with the row's reason)


class Identity(_Model):
    kind: IdentityKind
    column: SqlName


class Parent(_Model):
    """This table's rows belong to the person through `column`, which holds the key of their
    rows in `table` (an already identified table of the same system)."""

    table: SqlName
    column: SqlName


class Column(_Model):
    column: SqlName
    category: Ident  # one of the pack's `[categories]`
    erase: FieldErasure = FieldErasure.NULL
    text: NonEmpty | None = None  # what TEXT writes
    # A correction of this bot field ("first_name", "last_name", "phone") sets this column.
    corrects: Literal["first_name", "last_name", "phone"] | None = None

    @model_validator(mode="after")
    def _text(self) -> Column:
        if (self.erase is FieldErasure.TEXT) != (self.text is not None):
            raise ValueError(f"{self.column}: `text` is given exactly when erase = 'text'")
        return self


class Table(_Model):
    name: SqlName
    key: SqlName | None = None  # the key other tables refer to (`parent.column` holds it)
    identity: Identity | None = None
    parent: Parent | None = None
    fields: Annotated[list[Column], Field(min_length=1)]
    erase: TableErasure = TableErasure.DELETE
    # Why the rows are kept where erasure only changes fields (the law that requires it), told
    # to the person: required with erase = "update".
    keep: Text | None = None
    restrict: SqlName | None = None  # a flag column set true while processing is restricted

    @model_validator(mode="after")
    def _shape(self) -> Table:
        if (self.identity is None) == (self.parent is None):
            raise ValueError(f"table {self.name}: give exactly one of `identity` and `parent`")
        if self.erase is TableErasure.UPDATE and self.keep is None:
            raise ValueError(f"table {self.name}: erase = 'update' needs `keep`, the reason")
        columns = [c.column for c in self.fields]
        if len(columns) != len(set(columns)):
            raise ValueError(f"table {self.name}: a column is listed twice")
        return self


class System(_Model):
    id: Ident
    name: Text
    kind: SystemKind
    categories: Annotated[list[Ident], Field(min_length=1)]
    url_env: EnvName | None = None  # sql: the database URL; webhook: the endpoint
    secret_env: EnvName | None = None  # webhook: the HMAC secret
    tables: list[Table] = Field(default_factory=list)  # sql only
    instructions: Text | None = None  # manual: what staff do there

    @model_validator(mode="after")
    def _kind(self) -> System:
        if self.kind is SystemKind.SQL:
            if self.url_env is None or not self.tables:
                raise ValueError(f"system {self.id}: an sql system needs `url_env` and `tables`")
            self._check_tables()
        elif self.tables:
            raise ValueError(f"system {self.id}: only an sql system lists `tables`")
        if self.kind is SystemKind.WEBHOOK and (self.url_env is None or self.secret_env is None):
            raise ValueError(f"system {self.id}: a webhook system needs `url_env` and `secret_env`")
        if self.kind is SystemKind.MANUAL and (self.url_env or self.secret_env):
            raise ValueError(
                f"system {self.id}: a manual system reads nothing from the environment"
            )
        return self

    def _check_tables(self) -> None:
        seen: dict[str, Table] = {}
        for table in self.tables:
            if table.name in seen:
                raise ValueError(f"system {self.id}: table {table.name} is listed twice")
            if table.parent is not None:
                parent = seen.get(table.parent.table)
                if parent is None:
                    raise ValueError(
                        f"system {self.id}: table {table.name} refers to {table.parent.table}, "
                        "which must be listed before it"
                    )
                if parent.key is None:
                    raise ValueError(
                        f"system {self.id}: table {table.parent.table} needs `key` "
                        f"(table {table.name} refers to it)"
                    )
            seen[table.name] = table

    @property
    def connected_by_env(self) -> bool:
        """Whether the system is reached through the environment (not a manual one)."""
        return self.kind is not SystemKind.MANUAL

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name == name), None)

    def corrects(self, field: str) -> bool:
        """Whether a correction of the bot field `field` changes something here (a webhook or
        manual system is always given the correction)."""
        if self.kind is not SystemKind.SQL:
            return True
        return any(c.corrects == field for t in self.tables for c in t.fields)

    def restricts(self) -> bool:
        """Whether a restriction can be recorded here (an sql system needs a flag column)."""
        return self.kind is not SystemKind.SQL or any(t.restrict for t in self.tables)


def check_systems(categories: dict[str, Text], systems: list[System]) -> None:
    """The systems of one pack: unique ids, only the pack's own categories."""
    ids = [s.id for s in systems]
    if len(ids) != len(set(ids)):
        raise ValueError("systems: every system id must be unique")
    for key in categories:
        if not key.replace("_", "").isalnum() or not key[:1].isalpha() or key != key.lower():
            raise ValueError(f"categories: '{key}' is not a lower-case identifier")
    for system in systems:
        named = set(system.categories) | {c.category for t in system.tables for c in t.fields}
        unknown = sorted(named - set(categories))
        if unknown:
            raise ValueError(
                f"systems: {system.id} names categories not in [categories]: {unknown}"
            )
