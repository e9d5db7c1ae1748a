"""The consent ledger (append-only events) and the current state per purpose, written by
compare-and-set; the consent texts people were shown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    String,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from storage import chain
from storage.dialect import PerEngine
from storage.dialect import insert as upsert
from storage.models import ConsentEvent, ConsentState, ConsentText, User, UTCDateTime
from storage.repositories.campaigns import Audience

# Consent texts known to be stored, per engine (database): each text is inserted once.
_STORED_TEXTS: WeakKeyDictionary[Any, set[str]] = WeakKeyDictionary()


class LostRace(Exception):
    """The consent state changed between our read and our write (not on SQLite, where the
    event insert holds the write lock until the state is written)."""


# The statements of the consent screens and toggles, built once (bind parameters by name):
# building them per call cost more CPU than running them. The writes are Core statements on the
# tables: given parameters, an ORM INSERT or UPDATE would be a bulk operation by primary key.
_EVENTS = ConsentEvent.__table__
_CONSENT_STATES = ConsentState.__table__
_STATES = (
    select(ConsentState)
    .where(ConsentState.user_id == bindparam("uid"))
    .execution_options(populate_existing=True)
)
_EVENT_COLUMNS = {
    "user_id": BigInteger,
    "purpose": String,
    "granted": Boolean,
    "at": UTCDateTime,
    "policy_version": String,
    "source": String,
    "actor_id": BigInteger,
    "text_id": String,
}


def _event_if(still: ColumnElement[bool]) -> Any:
    """Insert the event only while `still` holds (the compare-and-set of `record`)."""
    values = [bindparam(f"p_{name}", type_=kind) for name, kind in _EVENT_COLUMNS.items()]
    return (
        insert(_EVENTS)
        .from_select(list(_EVENT_COLUMNS), select(*values).where(still))
        .returning(_EVENTS.c.id)
    )


_UNCHANGED = select(_CONSENT_STATES.c.event_id).where(
    _CONSENT_STATES.c.user_id == bindparam("p_user_id"),
    _CONSENT_STATES.c.purpose == bindparam("p_purpose"),
)
_FIRST_EVENT = _event_if(~_UNCHANGED.exists())
_NEXT_EVENT = _event_if(
    _UNCHANGED.where(_CONSENT_STATES.c.event_id == bindparam("p_read_event")).exists()
)
_STATE_VALUES = {
    "granted": bindparam("p_granted"),
    "policy_version": bindparam("p_policy_version"),
    "event_id": bindparam("p_event_id"),
    "updated_at": bindparam("p_at", type_=UTCDateTime),
}
_NEXT_STATE = (
    update(_CONSENT_STATES)
    .where(
        _CONSENT_STATES.c.user_id == bindparam("p_user_id"),
        _CONSENT_STATES.c.purpose == bindparam("p_purpose"),
        _CONSENT_STATES.c.event_id == bindparam("p_read_event"),
    )
    .values(**_STATE_VALUES)
)
# The first state of a purpose, inserted unless a concurrent writer did (spelled per engine).
_first_state: PerEngine[Any] = PerEngine(
    lambda target: (
        upsert(target, _CONSENT_STATES)
        .values(user_id=bindparam("p_user_id"), purpose=bindparam("p_purpose"), **_STATE_VALUES)
        .on_conflict_do_nothing()
    )
)


class ConsentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._states: dict[int, dict[str, ConsentState]] = {}
        self._new_texts: set[str] = set()

    async def states(self, user_id: int) -> dict[str, ConsentState]:
        """The user's consent states, read once per unit of work and kept current by
        `record`, so a screen drawn after a change does not read them again."""
        if user_id not in self._states:
            rows = await self._session.scalars(_STATES, {"uid": user_id})
            self._states[user_id] = {row.purpose: row for row in rows}
        return dict(self._states[user_id])

    async def record(
        self,
        user_id: int,
        purpose: str,
        granted: bool,
        *,
        at: datetime,
        policy_version: str,
        source: str,
        actor_id: int,
        text: tuple[str, str, str],
    ) -> bool:
        """Append an event and move the state to it, unless the state already says so.

        `text` is (id, locale, body) of what the person was shown. The event is inserted only
        if the state row is still the one read (a compare-and-set in the INSERT itself), so of
        concurrent writers (a minor and their representative, a double tap) one records the
        change and the others record nothing; no savepoint is needed.
        """
        current = (await self.states(user_id)).get(purpose)
        if current is None and not granted:
            return False  # never given: there is nothing to withdraw
        same_version = current is not None and current.policy_version == policy_version
        if current is not None and current.granted == granted and (not granted or same_version):
            return False
        text_id, locale, body = text
        await self._store_text(text_id, purpose, locale, policy_version, body)
        params = {
            "p_user_id": user_id,
            "p_purpose": purpose,
            "p_granted": granted,
            "p_at": at,
            "p_policy_version": policy_version,
            "p_source": source,
            "p_actor_id": actor_id,
            "p_text_id": text_id,
        }
        await self._session.flush()  # Core statements do not autoflush as ORM ones did
        if current is None:
            event_id = await self._session.scalar(_FIRST_EVENT, params)
        else:
            params["p_read_event"] = current.event_id
            event_id = await self._session.scalar(_NEXT_EVENT, params)
        if event_id is None:
            return False  # someone else changed it first; nothing was written
        await chain.append(self._session, chain.CONSENTS, [event_id])  # same transaction
        values = {"granted": granted, "policy_version": policy_version, "event_id": event_id}
        moved = {f"p_{name}": value for name, value in values.items()}
        moved.update(p_user_id=user_id, p_purpose=purpose, p_at=at)
        if current is None:
            result = await self._session.execute(_first_state(self._session), moved)
        else:
            moved["p_read_event"] = current.event_id
            result = await self._session.execute(_NEXT_STATE, moved)
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LostRace(f"consent state of {purpose} changed concurrently")
        self._remember(user_id, purpose, current, at=at, **values)
        return True

    def _remember(
        self, user_id: int, purpose: str, current: ConsentState | None, **values: Any
    ) -> None:
        if current is None:
            self._states[user_id][purpose] = ConsentState(
                user_id=user_id, purpose=purpose, updated_at=values.pop("at"), **values
            )
            return
        values["updated_at"] = values.pop("at")
        for key, value in values.items():
            set_committed_value(current, key, value)  # as stored; not a pending change

    async def _store_text(
        self, text_id: str, purpose: str, locale: str, version: str, body: str
    ) -> None:
        stored = _STORED_TEXTS.setdefault(self._session.get_bind(), set())
        if text_id in stored or text_id in self._new_texts:
            return
        await self._session.execute(
            upsert(self._session, ConsentText)
            .values(id=text_id, purpose=purpose, locale=locale, policy_version=version, body=body)
            .on_conflict_do_nothing()
        )
        self._new_texts.add(text_id)

    def committed(self) -> None:
        """The texts inserted in this unit of work are stored for good."""
        if self._new_texts:
            _STORED_TEXTS.setdefault(self._session.get_bind(), set()).update(self._new_texts)
            self._new_texts.clear()

    def _ledger_query(self, user_id: int | None) -> Any:
        query = select(ConsentEvent)
        if user_id is not None:
            query = query.where(ConsentEvent.user_id == user_id)
        return query

    async def ledger_size(self, user_id: int | None = None) -> int:
        query = self._ledger_query(user_id).with_only_columns(func.count(ConsentEvent.id))
        return int(await self._session.scalar(query) or 0)

    async def ledger(
        self, user_id: int | None = None, *, batch: int = 500
    ) -> AsyncIterator[ConsentEvent]:
        """Every ledger event (or one user's), oldest first, fetched `batch` rows at a time so
        an export of any size needs little memory."""
        query = self._ledger_query(user_id).order_by(ConsentEvent.id)
        result = await self._session.stream_scalars(query.execution_options(yield_per=batch))
        async for event in result:
            yield event

    async def timeline(self, user_id: int, purpose: str) -> list[tuple[datetime, bool, str]]:
        """(at, granted, policy version) of one purpose's events, oldest first."""
        rows = await self._session.execute(
            select(ConsentEvent.at, ConsentEvent.granted, ConsentEvent.policy_version)
            .where(ConsentEvent.user_id == user_id, ConsentEvent.purpose == purpose)
            .order_by(ConsentEvent.id)
        )
        return [(at, granted, version) for at, granted, version in rows.all()]

    async def ledger_of(self, user_id: int) -> list[tuple[Any, ...]]:
        """One person's ledger as plain rows (purpose, granted, at, policy version, source,
        text ID), oldest first: no ORM objects, so 10,000 events read in tens of milliseconds."""
        rows = await self._session.execute(
            select(
                ConsentEvent.purpose,
                ConsentEvent.granted,
                ConsentEvent.at,
                ConsentEvent.policy_version,
                ConsentEvent.source,
                ConsentEvent.text_id,
            )
            .where(ConsentEvent.user_id == user_id)
            .order_by(ConsentEvent.id)
        )
        return [tuple(row) for row in rows.all()]

    async def events(self, user_id: int, *, limit: int) -> list[ConsentEvent]:
        rows = await self._session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.user_id == user_id)
            .order_by(ConsentEvent.id.desc())
            .limit(limit)
        )
        return list(reversed(rows.all()))

    def holders(self, purpose: str, versions: set[str]) -> Audience:
        """Users who hold a consent to `purpose` given under one of `versions` (a query)."""
        return (
            select(ConsentState.user_id)
            .join(User, User.id == ConsentState.user_id)
            .where(
                ConsentState.purpose == purpose,
                ConsentState.granted.is_(True),
                ConsentState.policy_version.in_(versions),
                User.blocked_bot.is_(False),
            )
        )
