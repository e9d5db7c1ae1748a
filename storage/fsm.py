"""An aiogram FSM storage in the bot's own database, so conversations survive a restart."""

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
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import FsmRecord


class SqlStorage(BaseStorage):
    """State and data per key in `fsm_states`; data must round-trip through JSON."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], key_builder: KeyBuilder | None = None
    ) -> None:
        self._sessions = sessions
        self._keys = key_builder or DefaultKeyBuilder()

    async def _load(self, key: StorageKey) -> FsmRecord | None:
        async with self._sessions() as session:
            return await session.get(FsmRecord, self._keys.build(key))

    async def _save(self, key: StorageKey, **values: Any) -> None:
        storage_key = self._keys.build(key)
        async with self._sessions() as session:
            record = await session.get(FsmRecord, storage_key)
            if record is None:
                record = FsmRecord(
                    key=storage_key, chat_id=key.chat_id, user_id=key.user_id, state=None, data="{}"
                )
                session.add(record)
            for name, value in values.items():
                setattr(record, name, value)
            if record.state is None and record.data == "{}":
                # An empty conversation leaves no row behind.
                if record in session.new:
                    session.expunge(record)
                else:
                    await session.delete(record)
            await session.commit()

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        name = state.state if isinstance(state, State) else state
        await self._save(key, state=name)

    async def get_state(self, key: StorageKey) -> str | None:
        record = await self._load(key)
        return None if record is None else record.state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        # json.dumps raises on anything that would not survive a restart.
        await self._save(key, data=json.dumps(dict(data), ensure_ascii=False, sort_keys=True))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        record = await self._load(key)
        return {} if record is None else json.loads(record.data)

    async def forget_user(self, user_id: int) -> None:
        """Drop every state and data of one person (used by erasure)."""
        async with self._sessions() as session:
            await session.execute(
                delete(FsmRecord).where(
                    (FsmRecord.user_id == user_id) | (FsmRecord.chat_id == user_id)
                )
            )
            await session.commit()

    async def close(self) -> None:
        return None
