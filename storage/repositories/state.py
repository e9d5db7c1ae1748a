"""The bot's own key-value state (`bot_state`): once-a-day and once-a-version claims, forum
topics, the retention counts."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialect import Space, claimable, try_lock_for_transaction
from storage.dialect import insert as upsert
from storage.models import BotState


class BotStateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, key: str) -> str | None:
        row = await self._session.get(BotState, key)
        return None if row is None else row.value

    async def set(self, key: str, value: str) -> None:
        statement = upsert(self._session, BotState).values(key=key, value=value)
        await self._session.execute(
            statement.on_conflict_do_update(index_elements=["key"], set_={"value": value})
        )

    async def put_if_absent(self, key: str, value: str) -> bool:
        """Set `key` unless it is set (a concurrent insert is waited for); True if this did."""
        result = await self._session.execute(
            upsert(self._session, BotState).values(key=key, value=value).on_conflict_do_nothing()
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def delete_if(self, key: str, value: str) -> bool:
        """Delete `key` only while it still holds `value` (compare-and-set); True if it did."""
        result = await self._session.execute(
            delete(BotState).where(BotState.key == key, BotState.value == value)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def replace_if(self, key: str, old: str, new: str) -> bool:
        """Set `key` to `new` only while it still holds `old` (compare-and-set); True if it
        did. A concurrent writer of the row is waited for, then the condition is read again."""
        result = await self._session.execute(
            update(BotState)
            .where(BotState.key == key, BotState.value == old)
            .values(value=new)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def claim(self, key: str, value: str) -> bool:
        """Set `key` to `value` unless it already is; True for the one caller that changed it
        (a once-a-day or once-a-version job, run by whichever instance gets there first).

        The row is read with FOR UPDATE SKIP LOCKED on PostgreSQL (storage.dialect.claimable)
        and changed by compare-and-set; a row another instance is claiming is not waited for:
        that instance decides. The first claim of a key inserts its row, under a transaction
        lock taken without waiting (storage.dialect.try_lock_for_transaction), so a second
        instance does not wait for the first's insert either."""
        held = await self._session.scalar(
            claimable(select(BotState.value).where(BotState.key == key))
        )
        if held is not None:
            result = await self._session.execute(
                update(BotState)
                .where(BotState.key == key, BotState.value != value)
                .values(value=value)
                .execution_options(synchronize_session=False)
            )
            return result.rowcount == 1  # type: ignore[attr-defined]
        if await self._session.scalar(select(BotState.key).where(BotState.key == key)):
            return False  # another instance is claiming it
        if not await try_lock_for_transaction(self._session, Space.STATE, key):
            return False  # another instance is inserting it
        return await self.put_if_absent(key, value)
