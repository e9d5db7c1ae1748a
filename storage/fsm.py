"""An aiogram FSM storage in the bot's own database, so conversations survive a restart.

During an update the state is read and written through the update's own session (bound with
`FsmScope.bind`): the middleware reads it together with the sender's profile in one statement
(`Repositories.load_sender`), and changes are written when the update's work is committed
(`Repositories.commit`), in the same transaction. An empty conversation leaves no row behind,
and clearing a conversation that has no row writes nothing. Outside an update (tests, tools)
each call uses its own short transaction on the engine.

The data (answers typed in a flow) is sealed under the user's data key; the state name is not
personal and stays readable, so reading a state needs no key. Data is opened only when asked
for (`get_data`) and sealed only when written."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)
from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from storage.crypto import KeyRing, MasterKeys, current_ring
from storage.dialect import PerEngine
from storage.dialect import insert as upsert
from storage.models import FsmRecord, Sealed, Unopened

EMPTY = "{}"


@dataclass(frozen=True)
class FsmRow:
    """A conversation's state and data. `data` is None (no data), the stored ciphertext
    (`Unopened`), or the JSON text (`Sealed` once stored or opened, a plain str when new)."""

    state: str | None
    data: str | None = None

    @property
    def empty(self) -> bool:
        return self.state is None and self.data is None


NO_ROW = FsmRow(None)


@dataclass
class FsmScope:
    """The FSM rows one update has read, and the ones it changed, over the update's session."""

    session: AsyncSession
    rows: dict[str, FsmRow] = field(default_factory=dict)
    changed: dict[str, StorageKey] = field(default_factory=dict)

    @contextmanager
    def bind(self) -> Iterator[FsmScope]:
        token = _scope.set(self)
        try:
            yield self
        finally:
            _scope.reset(token)

    async def flush(self) -> None:
        """Write the changed rows through the session (not committed here)."""
        changed, self.changed = self.changed, {}
        connection = await self.session.connection()
        ring = current_ring()
        for storage_key, key in changed.items():
            row = self.rows[storage_key]
            if ring is not None:
                row = self.rows[storage_key] = await _sealed(connection, ring, key, row)
            await _write(connection, storage_key, key, row)


_scope: ContextVar[FsmScope | None] = ContextVar("fsm_scope", default=None)


def current_scope() -> FsmScope | None:
    return _scope.get()


async def _read(executor: AsyncSession | AsyncConnection, storage_key: str) -> FsmRow:
    query = select(FsmRecord.state, FsmRecord.data).where(FsmRecord.key == storage_key)
    row = (await executor.execute(query)).first()
    return NO_ROW if row is None else FsmRow(row.state, row.data)


async def _sealed(
    connection: AsyncConnection, ring: KeyRing, key: StorageKey, row: FsmRow
) -> FsmRow:
    if row.data is None or isinstance(row.data, Sealed | Unopened):
        return row
    text = row.data
    sealed = await connection.run_sync(lambda sync: ring.seal(sync, key.user_id, text))
    return FsmRow(row.state, sealed)


async def _write(
    executor: AsyncSession | AsyncConnection, storage_key: str, key: StorageKey, row: FsmRow
) -> None:
    if row.empty:
        await executor.execute(_DELETE, {"p_key": storage_key})
        return
    values = {"p_state": row.state, "p_data": row.data}
    await executor.execute(
        _upsert(executor),
        {"p_key": storage_key, "p_chat": key.chat_id, "p_user": key.user_id, **values},
    )


# Built once per engine (bind parameters by name); Core statements on the table, so a session
# does not take the parameters for an ORM bulk operation.
_TABLE = FsmRecord.__table__
_DELETE = delete(_TABLE).where(_TABLE.c.key == bindparam("p_key"))
_VALUES = {"state": bindparam("p_state"), "data": bindparam("p_data")}
_upsert: PerEngine[Any] = PerEngine(
    lambda target: (
        upsert(target, _TABLE)
        .values(
            key=bindparam("p_key"),
            chat_id=bindparam("p_chat"),
            user_id=bindparam("p_user"),
            **_VALUES,
        )
        .on_conflict_do_update(index_elements=["key"], set_=_VALUES)
    )
)


class SqlStorage(BaseStorage):
    """State and data per key in `fsm_states`; data must round-trip through JSON."""

    def __init__(
        self, engine: AsyncEngine, master: MasterKeys, key_builder: KeyBuilder | None = None
    ) -> None:
        self._engine = engine
        self._master = master
        self._keys = key_builder or DefaultKeyBuilder()

    def storage_key(self, key: StorageKey) -> str:
        return self._keys.build(key)

    def _ring(self) -> KeyRing:
        """The update's key ring (shared with its session), or one for this call only."""
        return current_ring() or KeyRing(self._master)

    async def _load(self, key: StorageKey) -> FsmRow:
        storage_key = self._keys.build(key)
        scope = _scope.get()
        if scope is None:
            async with self._engine.connect() as connection:
                return await _read(connection, storage_key)
        if storage_key not in scope.rows:
            scope.rows[storage_key] = await _read(scope.session, storage_key)
        return scope.rows[storage_key]

    async def _save(self, key: StorageKey, **values: Any) -> None:
        """`data`, when given, is the JSON text to keep or None for no data."""
        storage_key = self._keys.build(key)
        scope = _scope.get()
        if scope is None:
            async with self._engine.begin() as connection:
                current = await _read(connection, storage_key)
                row = await _sealed(connection, self._ring(), key, _merge(current, values))
                await _write(connection, storage_key, key, row)
            return
        current = await self._load(key)
        new = _merge(current, values)
        if new == current:
            return  # e.g. clearing a conversation that has no row: nothing to write
        scope.rows[storage_key] = new
        scope.changed[storage_key] = key

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        name = state.state if isinstance(state, State) else state
        await self._save(key, state=name)

    async def get_state(self, key: StorageKey) -> str | None:
        return (await self._load(key)).state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        # json.dumps raises on anything that would not survive a restart.
        text = json.dumps(dict(data), ensure_ascii=False, sort_keys=True)
        await self._save(key, data=text if data else None)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        row = await self._load(key)
        if row.data is None:
            return {}
        text: str = row.data
        if isinstance(row.data, Unopened):
            token, ring = row.data, self._ring()
            scope = _scope.get()
            if scope is None:
                async with self._engine.connect() as connection:
                    text = await connection.run_sync(lambda sync: ring.open(sync, token))
            else:
                connection = await scope.session.connection()
                text = await connection.run_sync(lambda sync: ring.open(sync, token))
                scope.rows[self._keys.build(key)] = FsmRow(row.state, text)
        return dict(json.loads(text))

    async def close(self) -> None:
        return None


def _merge(current: FsmRow, values: dict[str, Any]) -> FsmRow:
    return FsmRow(values.get("state", current.state), values.get("data", current.data))
