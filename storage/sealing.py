"""Transparent encryption of Personal columns for the ORM: a model's personal fields are sealed
under their person's data key just before each INSERT or UPDATE and opened when rows load, so
repositories and the rest of the bot read and write plain text. The key ring lives in the
session (`session.info`), one per unit of work."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.attributes import set_committed_value

from storage.crypto import OPERATOR, KeyRing, MasterKeys
from storage.models import Base, Personal, Request, Sealed, Unopened

RING = "keyring"
MASTER = "master_keys"
# Execution option: leave the loaded rows' personal fields sealed; the caller fetched the data
# key in the same statement and calls `open_loaded` (saves a statement per update).
OPEN_LATER = "sealing_open_later"


def ring_of(session: Session) -> KeyRing:
    """The session's key ring, made on first use from the master keys the factory gave it."""
    ring = session.info.get(RING)
    if ring is None:
        master: MasterKeys = session.info[MASTER]
        ring = session.info[RING] = KeyRing(master)
    return ring  # type: ignore[no-any-return]


@cache
def personal_columns(cls: type) -> tuple[str, ...]:
    mapper = inspect(cls)
    return tuple(
        attr.key
        for attr in mapper.column_attrs
        if any(isinstance(column.type, Personal) for column in attr.columns)
    )


def owner_of(target: Any, connection: Connection) -> int:
    for name in getattr(type(target), "__owner__", ()):
        value = getattr(target, name)
        if value is None:
            continue
        if name == "request_id":
            owner = connection.scalar(select(Request.user_id).where(Request.id == value))
            # A request with no bot user (registered by staff): the operator's key.
            return OPERATOR if owner is None else int(owner)
        return int(value)
    return OPERATOR


def _seal(mapper: Mapper[Any], connection: Connection, target: Any) -> None:
    names = personal_columns(mapper.class_)
    if not names:
        return
    plain = [
        (n, v)
        for n in names
        if isinstance(v := target.__dict__.get(n), str) and not isinstance(v, Sealed | Unopened)
    ]
    if not plain:
        return
    session = Session.object_session(target)
    assert session is not None
    ring, owner = ring_of(session), owner_of(target, connection)
    for name, value in plain:
        setattr(target, name, ring.seal(connection, owner, value))


def _open(target: Any, context: Any) -> None:
    names = personal_columns(type(target))
    sealed = [(n, v) for n in names if isinstance(v := target.__dict__.get(n), Unopened)]
    if not sealed:
        return
    session = context.session if context is not None else Session.object_session(target)
    assert session is not None
    ring, connection = ring_of(session), session.connection()
    for name, token in sealed:
        set_committed_value(target, name, ring.open(connection, token))


def open_loaded(_session: Session, target: Any) -> None:
    """Open a row loaded with OPEN_LATER (run through `AsyncSession.run_sync`)."""
    _open(target, None)


def _on_load(target: Any, context: Any) -> None:
    if context.execution_options.get(OPEN_LATER):
        return
    _open(target, context)


def _on_refresh(target: Any, context: Any, attrs: Any) -> None:
    _open(target, context)


event.listen(Base, "before_insert", _seal, propagate=True)
event.listen(Base, "before_update", _seal, propagate=True)
event.listen(Base, "load", _on_load, propagate=True)
event.listen(Base, "refresh", _on_refresh, propagate=True)
