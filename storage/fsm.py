"""An aiogram FSM storage in the bot's own database, so conversations survive a restart.

Every update reads its state, so this uses plain Core statements on a pooled connection rather
than an ORM session. The data (answers typed in a flow) is sealed under the user's data key; the
state name is not personal and stays readable, so reading a state needs no key."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)
from sqlalchemy import delete, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.crypto import KeyRing, MasterKeys, current_ring
from storage.models import FsmRecord

EMPTY = "{}"


class SqlStorage(BaseStorage):
    """State and data per key in `fsm_states`; data must round-trip through JSON."""

    def __init__(
        self, engine: AsyncEngine, master: MasterKeys, key_builder: KeyBuilder | None = None
    ) -> None:
        self._engine = engine
        self._master = master
        self._keys = key_builder or DefaultKeyBuilder()

    def _ring(self) -> KeyRing:
        """The update's key ring (shared with its session), or one for this call only."""
        return current_ring() or KeyRing(self._master)

    async def _load(self, key: StorageKey, *, open_data: bool) -> tuple[str | None, str] | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(FsmRecord.state, FsmRecord.data).where(
                        FsmRecord.key == self._keys.build(key)
                    )
                )
            ).first()
            if row is None:
                return None
            data = EMPTY
            if open_data and row.data is not None:
                ring = self._ring()
                data = await connection.run_sync(lambda sync: ring.open(sync, row.data))
        return row.state, data

    async def _save(self, key: StorageKey, **values: Any) -> None:
        """`data`, when given, is the JSON text to keep (sealed here) or None for no data."""
        storage_key = self._keys.build(key)
        async with self._engine.begin() as connection:
            if values.get("data") is not None:
                ring, text = self._ring(), values["data"]
                values["data"] = await connection.run_sync(
                    lambda sync: ring.seal(sync, key.user_id, text)
                )
            current = (
                await connection.execute(
                    select(FsmRecord.state, FsmRecord.data).where(FsmRecord.key == storage_key)
                )
            ).first()
            row = {"state": None, "data": None} if current is None else current._asdict()
            row.update(values)
            if row["state"] is None and row["data"] is None:
                # An empty conversation leaves no row behind.
                await connection.execute(delete(FsmRecord).where(FsmRecord.key == storage_key))
                return
            statement = sqlite_insert(FsmRecord).values(
                key=storage_key, chat_id=key.chat_id, user_id=key.user_id, **row
            )
            await connection.execute(
                statement.on_conflict_do_update(index_elements=["key"], set_=row)
            )

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        name = state.state if isinstance(state, State) else state
        await self._save(key, state=name)

    async def get_state(self, key: StorageKey) -> str | None:
        record = await self._load(key, open_data=False)
        return None if record is None else record[0]

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        # json.dumps raises on anything that would not survive a restart.
        text = json.dumps(dict(data), ensure_ascii=False, sort_keys=True)
        await self._save(key, data=text if data else None)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        record = await self._load(key, open_data=True)
        return {} if record is None else dict(json.loads(record[1]))

    async def close(self) -> None:
        return None
