"""The `sql` connector: one of the operator's databases, reached through the SQLAlchemy async
URL its environment variable holds (`storage.external` does the SQL).

`run` carries a job out: access and portability read the person's rows in a read-only
transaction; erasure, correction and restriction change them in one transaction each. Before
the first statement the schema is reflected and checked against the pack (`check`); a mismatch
fails every job with one line until it is fixed. A database error becomes `Failed` naming the
system and the error's class ("accounts: OperationalError: connection refused"), never the
URL, a credential or a value: the job is retried later.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot.core.law import RequestType
from bot.core.systems import System, SystemKind, TableErasure
from bot.domain.systems import COLLECTS, Done, Failed, Outcome, Subject, Work
from storage.external import Changed, ExternalDatabase, Person, describe_error, open_engine
from storage.external.actions import SchemaMismatch

_FAILURES = (SQLAlchemyError, OSError, TimeoutError, ConnectionError)


class SqlConnector:
    """One `sql` system of the pack. `secret` keys the hash that pseudonymises a field (the
    bot's pseudonym secret)."""

    def __init__(self, system: System, url: str, secret: str) -> None:
        if system.kind is not SystemKind.SQL:
            raise ValueError(f"system {system.id} is not an sql system")
        self._system = system
        self._database = ExternalDatabase(open_engine(url), system.tables, secret.encode())

    @property
    def system(self) -> System:
        return self._system

    async def run(self, work: Work) -> Outcome:
        try:
            return await self._run(work)
        except SchemaMismatch as error:
            return Failed(
                f"{self._system.id}: the database does not match the pack "
                f"({len(error.problems)} problem(s): python -m bot systems check)"
            )
        except _FAILURES as error:
            self._database.forget()  # the schema may have changed: checked again next time
            return Failed(f"{self._system.id}: {describe_error(error)}")

    async def _run(self, work: Work) -> Outcome:
        person = _person(work.subject)
        if work.action in COLLECTS:
            read = await self._database.access(person)
            return Done(counts=read.counts, found=self._found(read.rows))
        if work.action is RequestType.ERASURE:
            changed = await self._database.erase(person)
            return Done(counts=changed.counts, kept=changed.kept)
        if work.action is RequestType.RECTIFICATION:
            if work.correction is None:
                return Done()
            changed = await self._database.correct(
                person, work.correction.field, work.correction.value
            )
            return _done(changed)
        if work.action is RequestType.RESTRICTION:
            return _done(await self._database.restrict(person))
        return Failed(f"{self._system.id}: {work.action} is not carried out in an sql system")

    def _found(self, rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        """Per category, one record per row and category: the table and the row's fields of
        that category."""
        found: dict[str, list[dict[str, Any]]] = {}
        for table in self._system.tables:
            for row in rows.get(table.name, []):
                by_category: dict[str, dict[str, Any]] = {}
                for column in table.fields:
                    if column.column in row:
                        by_category.setdefault(column.category, {})[column.column] = row[
                            column.column
                        ]
                for category, fields in by_category.items():
                    found.setdefault(category, []).append({"source": table.name, "fields": fields})
        return found

    async def check(self) -> list[str]:
        try:
            problems = await self._database.check()
        except _FAILURES as error:
            return [f"{self._system.id}: cannot connect ({describe_error(error)})"]
        return [f"{self._system.id}: {problem}" for problem in problems]

    async def dry_run(self, subject: Subject) -> list[str]:
        try:
            preview = await self._database.preview(_person(subject))
        except SchemaMismatch as error:
            return [f"{self._system.id}: {problem}" for problem in error.problems]
        except _FAILURES as error:
            return [f"{self._system.id}: cannot connect ({describe_error(error)})"]
        lines = []
        for table in self._system.tables:
            reads, erases = preview.reads[table.name], preview.erases[table.name]
            erasure = (
                f"erasure deletes {erases}"
                if table.erase is TableErasure.DELETE
                else f"erasure pseudonymises {erases} (rows kept)"
            )
            lines.append(f"{self._system.id}.{table.name}: access reads {reads} row(s), {erasure}")
        return lines

    async def close(self) -> None:
        await self._database.dispose()


def _person(subject: Subject) -> Person:
    return Person(telegram_id=subject.telegram_id, phone=subject.phone)


def _done(changed: Changed) -> Done:
    return Done(counts=changed.counts, kept=changed.kept)
