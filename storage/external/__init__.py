"""The SQL that acts on an operator's own database (a pack's `sql` system), given a description
of its tables: reflect and check the schema, find one person's rows by walking from their
identity, read them in a read-only transaction (access), erase, correct or restrict them in one
transaction, and count what each would touch (a dry run).

storage/ imports nothing of the bot: the description is read through the Protocols of `shape`,
which `bot.core.systems.Table` and its parts match. Table and column names come only from the
description and are checked against the reflected schema before any statement is built;
statements are SQLAlchemy Core (quoted identifiers), values always bound parameters. Nothing
read from the database is ever logged.

Modules: `shape` (what is asked and what is answered), `engines` (opening an engine, the
read-only and write transactions per engine, describing an error without values), `schema`
(reflection and its problems), `actions` (access, erasure, correction, restriction, dry run),
`demo` (the demo databases of the shipped packs' systems).
"""

from storage.external.actions import ExternalDatabase
from storage.external.engines import describe_error, open_engine, read_only, writing
from storage.external.shape import Changed, Person, Preview, Read

__all__ = [
    "Changed",
    "ExternalDatabase",
    "Person",
    "Preview",
    "Read",
    "describe_error",
    "open_engine",
    "read_only",
    "writing",
]
