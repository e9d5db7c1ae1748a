"""The operator's schema as the description names it: reflected once, checked, and turned into
SQLAlchemy `Table` objects holding only the described columns (and the primary key), so every
statement is built from checked names and quoted by SQLAlchemy.

`check` reports, one line each: a table or column the description names that is missing; an
identity or parent column without an index (the walk from a person would scan the table); a
field erasure the column cannot take (NULL into NOT NULL, a hash or text into a column that is
not text or is too short); a table whose rows are updated one by one without a primary key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeEngine

from storage.external.shape import DELETE, HASH, HASH_LENGTH, NULL, TEXT, UPDATE, TableSpec


@dataclass
class Reflected:
    """What the database has of the described tables."""

    tables: dict[str, Table] = field(default_factory=dict)  # only the tables that exist
    problems: list[str] = field(default_factory=list)


def named_columns(spec: TableSpec) -> list[tuple[str, str]]:
    """Every column the description names in `spec`, with its role (for the problem lines)."""
    named: list[tuple[str, str]] = []
    if spec.key:
        named.append((spec.key, "key"))
    if spec.identity is not None:
        named.append((spec.identity.column, "identity"))
    if spec.parent is not None:
        named.append((spec.parent.column, "parent"))
    named.extend((f.column, "field") for f in spec.fields)
    if spec.restrict:
        named.append((spec.restrict, "restriction flag"))
    return named


def reflect(connection: Connection, specs: Sequence[TableSpec]) -> Reflected:
    """Reflect the described tables (run through `AsyncConnection.run_sync`)."""
    inspector = inspect(connection)
    existing = set(inspector.get_table_names())
    result = Reflected(problems=_orphans(specs))
    metadata = MetaData()
    for spec in specs:
        if spec.name not in existing:
            result.problems.append(f"table {spec.name} is missing")
            continue
        columns = {c["name"]: c for c in inspector.get_columns(spec.name)}
        primary = list(inspector.get_pk_constraint(spec.name).get("constrained_columns") or [])
        missing = False
        seen: set[str] = set()
        for name, role in named_columns(spec):
            if name not in columns and name not in seen:
                result.problems.append(f"table {spec.name} has no column {name} ({role})")
                missing = True
            seen.add(name)
        if missing:
            continue
        wanted = list(dict.fromkeys([*primary, *(name for name, _ in named_columns(spec))]))
        table = Table(
            spec.name,
            metadata,
            *(
                Column(
                    name,
                    columns[name]["type"],
                    primary_key=name in primary,
                    nullable=columns[name].get("nullable", True),
                )
                for name in wanted
            ),
        )
        result.tables[spec.name] = table
        result.problems.extend(_indexes(inspector, spec))
        result.problems.extend(_erasures(spec, table, primary))
        if spec.restrict and not _is_flag(table.c[spec.restrict].type):
            result.problems.append(
                f"table {spec.name}: restriction flag {spec.restrict} is not a boolean"
            )
    return result


def _orphans(specs: Sequence[TableSpec]) -> list[str]:
    """A table whose rows stay while the parent rows they refer to go must let go of them
    (its parent column erased to NULL), or the erasure breaks the foreign key."""
    erase = {spec.name: spec.erase for spec in specs}
    problems = []
    for spec in specs:
        if spec.parent is None or spec.erase != UPDATE or erase.get(spec.parent.table) != DELETE:
            continue
        column = next((f for f in spec.fields if f.column == spec.parent.column), None)
        if column is None or column.erase != NULL:
            problems.append(
                f"table {spec.name} keeps its rows but erasure deletes the {spec.parent.table} "
                f"rows they refer to: list {spec.parent.column} among its fields with "
                "erase = 'null'"
            )
    return problems


def _indexes(inspector: Any, spec: TableSpec) -> list[str]:
    """Identity and parent columns must lead an index (or the primary key, or a unique
    constraint)."""
    leading: set[str] = set()
    primary = inspector.get_pk_constraint(spec.name).get("constrained_columns") or []
    if primary:
        leading.add(primary[0])
    for index in inspector.get_indexes(spec.name):
        names = [n for n in index.get("column_names") or [] if n]
        if names:
            leading.add(names[0])
    for unique in inspector.get_unique_constraints(spec.name):
        if unique.get("column_names"):
            leading.add(unique["column_names"][0])
    problems = []
    for column, role in (
        (spec.identity.column if spec.identity else None, "identity"),
        (spec.parent.column if spec.parent else None, "parent"),
    ):
        if column is not None and column not in leading:
            problems.append(
                f"table {spec.name}: {role} column {column} has no index "
                "(each lookup would scan the table)"
            )
    return problems


def _erasures(spec: TableSpec, table: Table, primary: list[str]) -> list[str]:
    if spec.erase != UPDATE:
        return []
    problems = []
    if not primary and not spec.key:
        problems.append(
            f"table {spec.name} has no primary key (erase = 'update' changes its rows one by "
            "one: give `key`, a unique column)"
        )
    for field_ in spec.fields:
        column = table.c[field_.column]
        where = f"table {spec.name}: column {field_.column}"
        if field_.erase == NULL and not column.nullable:
            problems.append(f"{where} is NOT NULL: erase = 'null' cannot empty it")
        elif field_.erase in (HASH, TEXT):
            need = HASH_LENGTH if field_.erase == HASH else len(field_.text or "")
            if not _is_text(column.type):
                problems.append(f"{where} is not a text column: erase = '{field_.erase}'")
            elif (length := getattr(column.type, "length", None)) and length < need:
                problems.append(
                    f"{where} holds {length} characters, erase = '{field_.erase}' writes {need}"
                )
    return problems


def _python_type(type_: TypeEngine[Any]) -> type | None:
    try:
        return type_.python_type
    except NotImplementedError:
        return None


def _is_text(type_: TypeEngine[Any]) -> bool:
    return isinstance(type_, String) or _python_type(type_) is str


def _is_flag(type_: TypeEngine[Any]) -> bool:
    return _python_type(type_) in (bool, int) or isinstance(type_, Integer)


def bind_value(table: Table, column: str, value: object) -> object:
    """`value` as the column's type takes it: the Telegram ID as text in a text column."""
    wanted = _python_type(table.c[column].type)
    if wanted is str and not isinstance(value, str):
        return str(value)
    if wanted is int and isinstance(value, str) and value.lstrip("+").isdigit():
        return int(value.lstrip("+"))
    return value
