"""Access, erasure, correction, restriction and the dry run on one operator's database.

One person's rows are found by walking the described tables in their order: a table with an
`identity` matches the person's Telegram ID (or verified phone); a table with a `parent` matches
the keys of the parent table's rows already found (resolved first, then `column IN (keys)`:
every engine uses the child column's index). Access and the dry run read in a read-only
transaction; an erasure, a correction or a restriction is one write transaction. An erasure
goes children first (the reverse of the description's order) and is idempotent: a second run
finds the identity erased or the fields already erased, and changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Table, and_, delete, false, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.external.engines import read_only, writing
from storage.external.schema import bind_value, reflect
from storage.external.shape import (
    DELETE,
    HASH,
    KEEP,
    NULL,
    PHONE,
    TEXT,
    Changed,
    ColumnSpec,
    Person,
    Preview,
    Read,
    TableSpec,
)

_HASHED = re.compile(r"[0-9a-f]{64}")
_SKIP = object()  # a value access leaves out (bytes)


class SchemaMismatch(Exception):
    """The database does not match the description: nothing is done until it does."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) between the pack and the database")
        self.problems = problems


class ExternalDatabase:
    """One operator database described by `specs` (in the description's order: a parent before
    its children). `secret` keys the hash that pseudonymises a field."""

    def __init__(self, engine: AsyncEngine, specs: Sequence[TableSpec], secret: bytes) -> None:
        self.engine = engine
        self.specs = list(specs)
        self._secret = secret
        self._tables: dict[str, Table] | None = None
        self._parents = {s.parent.table for s in self.specs if s.parent is not None}

    # --- the schema --------------------------------------------------------------------------

    async def check(self) -> list[str]:
        """Reflect the schema again: one line per problem, none when it matches."""
        async with read_only(self.engine) as connection:
            reflected = await connection.run_sync(reflect, self.specs)
        if not reflected.problems:
            self._tables = reflected.tables
        return reflected.problems

    async def tables(self) -> dict[str, Table]:
        """The checked tables (reflected on first use); SchemaMismatch when they do not match."""
        if self._tables is None:
            problems = await self.check()
            if problems:
                raise SchemaMismatch(problems)
        assert self._tables is not None
        return self._tables

    def forget(self) -> None:
        """Reflect again before the next statement (after an error: the schema may have
        changed)."""
        self._tables = None

    async def dispose(self) -> None:
        await self.engine.dispose()

    # --- the walk ----------------------------------------------------------------------------

    async def _where(
        self, connection: AsyncConnection, tables: dict[str, Table], person: Person
    ) -> dict[str, ColumnElement[bool]]:
        """Per table, the condition that selects the person's rows."""
        where: dict[str, ColumnElement[bool]] = {}
        keys: dict[str, list[Any]] = {}
        for spec in self.specs:
            table = tables[spec.name]
            if spec.identity is not None:
                condition = _identity(table, spec.identity.kind, spec.identity.column, person)
            else:
                assert spec.parent is not None
                found = keys[spec.parent.table]
                column = spec.parent.column
                condition = table.c[column].in_([bind_value(table, column, k) for k in found])
            where[spec.name] = condition
            if spec.name in self._parents and spec.key:
                rows = await connection.execute(select(table.c[spec.key]).where(condition))
                keys[spec.name] = [k for k in rows.scalars() if k is not None]
        return where

    # --- access ------------------------------------------------------------------------------

    async def access(self, person: Person) -> Read:
        tables = await self.tables()
        rows: dict[str, list[dict[str, Any]]] = {}
        async with read_only(self.engine) as connection:
            where = await self._where(connection, tables, person)
            for spec in self.specs:
                table = tables[spec.name]
                columns = [table.c[f.column] for f in spec.fields]
                result = await connection.execute(select(*columns).where(where[spec.name]))
                rows[spec.name] = [_json_row(row._mapping) for row in result]
        return Read(rows=rows, counts={name: len(found) for name, found in rows.items()})

    # --- erasure -----------------------------------------------------------------------------

    async def erase(self, person: Person) -> Changed:
        tables = await self.tables()
        counts: dict[str, int] = {}
        kept: list[str] = []
        async with writing(self.engine) as connection:
            where = await self._where(connection, tables, person)
            for spec in reversed(self.specs):
                table = tables[spec.name]
                if spec.erase == DELETE:
                    result = await connection.execute(delete(table).where(where[spec.name]))
                    counts[spec.name] = max(result.rowcount, 0)
                    continue
                matched, changes = await self._pseudonymised(connection, table, spec, where)
                for key, values in changes:
                    await connection.execute(update(table).where(key).values(values))
                counts[spec.name] = len(changes)
                if matched:
                    kept.append(spec.name)
        ordered = {spec.name: counts[spec.name] for spec in self.specs}
        return Changed(counts=ordered, kept=tuple(s.name for s in self.specs if s.name in kept))

    async def _pseudonymised(
        self,
        connection: AsyncConnection,
        table: Table,
        spec: TableSpec,
        where: dict[str, ColumnElement[bool]],
    ) -> tuple[int, list[tuple[ColumnElement[bool], dict[str, Any]]]]:
        """The person's rows of an "update" table, and for each row that still holds something
        to erase: its key condition and its new values."""
        erased = [f for f in spec.fields if f.erase != KEEP]
        identity = list(table.primary_key.columns) or [table.c[spec.key or ""]]
        columns = list(dict.fromkeys([*identity, *(table.c[f.column] for f in erased)]))
        result = await connection.execute(select(*columns).where(where[spec.name]))
        rows = result.all()
        changes = []
        for row in rows:
            mapping = row._mapping
            values = {}
            for field_ in erased:
                old = mapping[field_.column]
                new = self._erased(field_, old)
                if new != old:
                    values[field_.column] = new
            if values:
                key = and_(*(c == mapping[c.name] for c in identity))
                changes.append((key, values))
        return len(rows), changes

    def _erased(self, field_: ColumnSpec, old: Any) -> Any:
        if field_.erase == NULL:
            return None
        if field_.erase == TEXT:
            return field_.text
        if field_.erase == HASH:
            if old is None or (isinstance(old, str) and _HASHED.fullmatch(old)):
                return old  # nothing to hash, or hashed already (a second run)
            return hmac.new(self._secret, str(old).encode("utf-8"), hashlib.sha256).hexdigest()
        return old

    # --- correction and restriction ----------------------------------------------------------

    async def correct(self, person: Person, field: str, value: str) -> Changed:
        """Set every column whose `corrects` names the bot field `field` to `value`."""
        tables = await self.tables()
        counts: dict[str, int] = {}
        async with writing(self.engine) as connection:
            where = await self._where(connection, tables, person)
            for spec in self.specs:
                columns = [f.column for f in spec.fields if f.corrects == field]
                if not columns:
                    continue
                table = tables[spec.name]
                new = {c: bind_value(table, c, value) for c in columns}
                differs = or_(*(or_(table.c[c].is_(None), table.c[c] != new[c]) for c in columns))
                statement = update(table).where(where[spec.name], differs).values(new)
                counts[spec.name] = max((await connection.execute(statement)).rowcount, 0)
        return Changed(counts=counts)

    async def restrict(self, person: Person) -> Changed:
        """Set each table's restriction flag for the person's rows."""
        tables = await self.tables()
        counts: dict[str, int] = {}
        async with writing(self.engine) as connection:
            where = await self._where(connection, tables, person)
            for spec in self.specs:
                if not spec.restrict:
                    continue
                flag = tables[spec.name].c[spec.restrict]
                unset = or_(flag.is_(None), flag != True)  # noqa: E712 (SQL, not Python)
                statement = (
                    update(tables[spec.name]).where(where[spec.name], unset).values({flag: True})
                )
                counts[spec.name] = max((await connection.execute(statement)).rowcount, 0)
        return Changed(counts=counts)

    # --- the dry run -------------------------------------------------------------------------

    async def preview(self, person: Person) -> Preview:
        """What access would read and erasure would change, per table; nothing is changed."""
        tables = await self.tables()
        reads: dict[str, int] = {}
        erases: dict[str, int] = {}
        async with read_only(self.engine) as connection:
            where = await self._where(connection, tables, person)
            for spec in self.specs:
                table = tables[spec.name]
                count = select(func.count()).select_from(table).where(where[spec.name])
                reads[spec.name] = int(await connection.scalar(count) or 0)
                if spec.erase == DELETE:
                    erases[spec.name] = reads[spec.name]
                else:
                    _, changes = await self._pseudonymised(connection, table, spec, where)
                    erases[spec.name] = len(changes)
        return Preview(reads=reads, erases=erases)


def _identity(table: Table, kind: str, column: str, person: Person) -> ColumnElement[bool]:
    if kind == PHONE:
        if not person.phone:
            return false()
        digits = person.phone.lstrip("+")
        candidates = list(dict.fromkeys([f"+{digits}", digits]))
        return table.c[column].in_([bind_value(table, column, c) for c in candidates])
    return table.c[column] == bind_value(table, column, person.telegram_id)


def _json_row(mapping: Any) -> dict[str, Any]:
    out = {}
    for name, value in mapping.items():
        safe = json_safe(value)
        if safe is not _SKIP:
            out[name] = safe
    return out


def json_safe(value: Any) -> Any:
    """A value as JSON carries it: dates ISO, decimals as text; bytes are left out."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _SKIP
    return str(value)
