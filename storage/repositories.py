"""Repositories: the only place that speaks SQL. One `Repositories` per database session."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from storage.dialect import (
    AppendOnlyLifted,
    PerEngine,
    Space,
    claimable,
    try_lock_for_transaction,
)
from storage.dialect import insert as upsert
from storage.fsm import NO_ROW, FsmRow, current_scope
from storage.models import (
    AnswerTemplate,
    AuditEntry,
    BotState,
    Breach,
    Campaign,
    ConsentEvent,
    ConsentState,
    ConsentText,
    DataKey,
    Delivery,
    Disclosure,
    ErasureRecord,
    FsmRecord,
    GuardianConfirmation,
    GuardianLink,
    OutboxItem,
    RelayLink,
    Request,
    RequestAttachment,
    RequestMessage,
    StaffRole,
    User,
    UTCDateTime,
)
from storage.sealing import OPEN_LATER, open_loaded, ring_of

# Who a campaign goes to: a query of user IDs, counted or queued inside the database (a
# campaign to a million users never holds their IDs in memory).
Audience = Select[tuple[int]]


def _load_sender() -> Select[Any]:
    """Built once: constructing this statement cost more than executing it."""
    probe = select(bindparam("uid", type_=BigInteger).label("uid")).subquery()
    represents = (
        select(GuardianConfirmation.id)
        .where(GuardianConfirmation.guardian_id == probe.c.uid)
        .exists()
    )
    return (
        select(
            User,
            FsmRecord.key,
            FsmRecord.state,
            FsmRecord.data,
            represents.label("represents"),
            DataKey.wrapped_by,
            DataKey.wrapped,
        )
        .select_from(probe)
        .outerjoin(User, User.id == probe.c.uid)
        .outerjoin(FsmRecord, FsmRecord.key == bindparam("fsm_key", type_=String))
        .outerjoin(DataKey, DataKey.owner_id == probe.c.uid)
    )


_LOAD_SENDER = _load_sender()


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, user_id: int) -> User | None:
        return await self._session.get(User, user_id)

    async def load(self, user_id: int, fsm_key: str) -> tuple[User | None, FsmRow, bool]:
        """In one statement: the sender's profile, their conversation state (FSM), and whether
        they represent anyone (so the common consent screen skips looking for minors)."""
        row = (
            await self._session.execute(
                _LOAD_SENDER,
                {"uid": user_id, "fsm_key": fsm_key},
                execution_options={OPEN_LATER: True},
            )
        ).one()
        # Their data key (or its absence) came in the same statement: no lookup of its own.
        ring_of(self._session.sync_session).remember(user_id, row.wrapped_by, row.wrapped)
        if row[0] is not None:
            await self._session.run_sync(open_loaded, row[0])
        fsm = NO_ROW if row.key is None else FsmRow(row.state, row.data)
        return row[0], fsm, bool(row.represents)

    @staticmethod
    def _idle(before: datetime, now: datetime, open_statuses: frozenset[str]) -> Any:
        busy = select(Request.id).where(
            Request.user_id == User.id,
            Request.status.in_(open_statuses)
            | ((Request.status == "blocked") & (Request.hold_until > now)),
        )
        consenting = select(ConsentState.user_id).where(
            ConsentState.user_id == User.id, ConsentState.granted.is_(True)
        )
        return and_(
            func.coalesce(User.last_seen_at, User.created_at) < before,
            User.restricted_until.is_(None) | (User.restricted_until <= now),
            ~busy.exists(),
            ~consenting.exists(),
        )

    async def idle(
        self, before: datetime, now: datetime, open_statuses: frozenset[str]
    ) -> list[int]:
        """People last seen before `before` with nothing open, no legal hold, no restriction
        in force and no consent on: the storage-limitation job erases them."""
        rows = await self._session.scalars(
            select(User.id).where(self._idle(before, now, open_statuses)).order_by(User.id)
        )
        return list(rows)

    async def claim_idle(
        self, user_id: int, before: datetime, now: datetime, open_statuses: frozenset[str]
    ) -> bool:
        """Take an idle person for erasure in this transaction: still idle now (compare-and-set
        on what `idle` read: they may have come back since) and their row not being written
        by anyone else (PostgreSQL: FOR UPDATE SKIP LOCKED; one who is busy is left alone,
        not waited for)."""
        found = await self._session.scalar(
            claimable(
                select(User.id).where(User.id == user_id, self._idle(before, now, open_statuses))
            )
        )
        return found is not None

    def not_told_of(self, version: str) -> Audience:
        """Onboarded, reachable users who last saw an older policy version (a query)."""
        return select(User.id).where(
            User.notice_version.is_not(None),
            User.notice_version != version,
            User.blocked_bot.is_(False),
        )

    async def set_blocked(self, user_id: int, blocked: bool) -> bool:
        """Reachability from Telegram's own signal; True when it changed."""
        result = await self._session.execute(
            update(User)
            .where(User.id == user_id, User.blocked_bot.is_not(blocked))
            .values(blocked_bot=blocked)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def create(
        self,
        user_id: int,
        *,
        language: str,
        username: str | None,
        first_name: str | None,
        last_name: str | None,
        now: datetime,
    ) -> User:
        user = User(
            id=user_id,
            language=language,
            username=username,
            first_name=first_name,
            last_name=last_name,
            blocked_bot=False,
            created_at=now,
            last_seen_at=now,
        )
        self._session.add(user)
        await self._session.flush()
        return user


class GuardianRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        # Whether a user represents anyone, when already known in this unit of work.
        self.represents: dict[int, bool] = {}

    async def add_link(
        self, *, token_hash: str, minor_id: int, created_at: datetime, expires_at: datetime
    ) -> GuardianLink:
        link = GuardianLink(
            token_hash=token_hash, minor_id=minor_id, created_at=created_at, expires_at=expires_at
        )
        self._session.add(link)
        await self._session.flush()
        return link

    async def link_by_id(self, link_id: int) -> GuardianLink | None:
        return await self._session.get(GuardianLink, link_id)

    async def expire_open_links(self, minor_id: int, *, now: datetime) -> None:
        await self._session.execute(
            update(GuardianLink)
            .where(
                GuardianLink.minor_id == minor_id,
                GuardianLink.used_at.is_(None),
                GuardianLink.expires_at > now,
            )
            .values(expires_at=now)
        )

    async def link_by_hash(self, token_hash: str) -> GuardianLink | None:
        result = await self._session.execute(
            select(GuardianLink).where(GuardianLink.token_hash == token_hash)
        )
        return result.scalar_one_or_none()

    async def claim_link(self, link_id: int, *, used_by: int, now: datetime) -> bool:
        """Mark a link used; False when someone used it first (single use under races)."""
        result = await self._session.execute(
            update(GuardianLink)
            .where(GuardianLink.id == link_id, GuardianLink.used_at.is_(None))
            .values(used_at=now, used_by=used_by)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def add_confirmation(
        self, *, minor_id: int, guardian_id: int, link_id: int, now: datetime, policy_version: str
    ) -> GuardianConfirmation:
        confirmation = GuardianConfirmation(
            minor_id=minor_id,
            guardian_id=guardian_id,
            link_id=link_id,
            confirmed_at=now,
            policy_version=policy_version,
        )
        self._session.add(confirmation)
        await self._session.flush()
        self.represents[guardian_id] = True
        return confirmation

    async def is_guardian(self, guardian_id: int, minor_id: int) -> bool:
        found = await self._session.scalar(
            select(GuardianConfirmation.id).where(
                GuardianConfirmation.guardian_id == guardian_id,
                GuardianConfirmation.minor_id == minor_id,
            )
        )
        return found is not None

    async def minors_of(self, guardian_id: int) -> list[User]:
        if self.represents.get(guardian_id) is False:
            return []  # the common case, known from the sender's load: no query
        rows = await self._session.scalars(
            select(User)
            .join(GuardianConfirmation, GuardianConfirmation.minor_id == User.id)
            .where(GuardianConfirmation.guardian_id == guardian_id)
            .distinct()
            .order_by(User.id)
        )
        return list(rows)

    async def confirmations_of(self, minor_id: int) -> list[GuardianConfirmation]:
        rows = await self._session.scalars(
            select(GuardianConfirmation)
            .where(GuardianConfirmation.minor_id == minor_id)
            .order_by(GuardianConfirmation.id)
        )
        return list(rows)

    async def confirmations_by(self, guardian_id: int) -> list[GuardianConfirmation]:
        rows = await self._session.scalars(
            select(GuardianConfirmation)
            .where(GuardianConfirmation.guardian_id == guardian_id)
            .order_by(GuardianConfirmation.id)
        )
        return list(rows)

    async def latest_confirmation(self, minor_id: int) -> GuardianConfirmation | None:
        result = await self._session.execute(
            select(GuardianConfirmation)
            .where(GuardianConfirmation.minor_id == minor_id)
            .order_by(GuardianConfirmation.confirmed_at.desc(), GuardianConfirmation.id.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()


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


@dataclass(frozen=True)
class Eligibility:
    """Who may receive a campaign message at the moment it is sent. `screened`: reachable (has
    not blocked the bot), not restricted, not under a legal hold (a breach notice skips these
    checks: GDPR art. 34). Then either holding the consent (`purpose` under one of `versions`)
    or, with `notice_version`, not yet told of that policy version."""

    screened: bool = True
    purpose: str | None = None
    versions: frozenset[str] = frozenset()
    notice_version: str | None = None

    def of_user(self, now: datetime) -> ColumnElement[bool]:
        rules: list[ColumnElement[bool]] = []
        if self.screened:
            rules += [
                User.blocked_bot.is_(False),
                or_(User.restricted_until.is_(None), User.restricted_until <= now),
                ~exists().where(
                    Request.user_id == User.id,
                    Request.status == "blocked",
                    Request.hold_until > now,
                ),
            ]
        if self.notice_version is not None:
            rules.append(
                or_(User.notice_version.is_(None), User.notice_version != self.notice_version)
            )
        if self.purpose is not None:
            rules.append(
                exists().where(
                    ConsentState.user_id == User.id,
                    ConsentState.purpose == self.purpose,
                    ConsentState.granted.is_(True),
                    ConsentState.policy_version.in_(self.versions),
                )
            )
        return and_(User.id.is_not(None), *rules)


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    user_id: int
    attempts: int
    language: str


@dataclass(frozen=True)
class Claim:
    """One claim of a campaign's deliveries: those now `sending` (to be sent by the claimer),
    how many became `skipped`, and how many pending rows were looked at (0: none left)."""

    claimed: list[Claimed]
    skipped: int
    seen: int


class CampaignRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, *, kind: str, body: str, created_by: int, now: datetime) -> Campaign:
        campaign = Campaign(
            kind=kind, body=body, status="draft", created_by=created_by, created_at=now
        )
        self._session.add(campaign)
        await self._session.flush()
        return campaign

    async def get(self, campaign_id: int) -> Campaign | None:
        return await self._session.get(Campaign, campaign_id, populate_existing=True)

    async def _move(self, campaign_id: int, old: str, new: str, **values: Any) -> bool:
        result = await self._session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.status == old)
            .values(status=new, **values)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def start(
        self,
        campaign_id: int,
        audience: Audience,
        *,
        now: datetime,
        progress_message_id: int | None,
    ) -> int | None:
        """Draft -> sending with one pending delivery per recipient, queued by one INSERT ...
        SELECT inside the database; the number queued, or None if not a draft."""
        if not await self._move(
            campaign_id, "draft", "sending", started_at=now, progress_message_id=progress_message_id
        ):
            return None
        recipients = audience.subquery()
        result = await self._session.execute(
            insert(Delivery).from_select(
                ["campaign_id", "user_id", "status", "attempts"],
                select(
                    literal(campaign_id, Integer),
                    recipients.c[0],
                    literal("pending", String),
                    literal(0, Integer),
                ).order_by(recipients.c[0]),  # a queue in user ID order, on either engine
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def audience_size(self, audience: Audience) -> int:
        query = select(func.count()).select_from(audience.subquery())
        return int(await self._session.scalar(query) or 0)

    async def claim(
        self, campaign_id: int, limit: int, rules: Eligibility, *, now: datetime
    ) -> Claim:
        """Take up to `limit` pending deliveries at once: those whose recipient may receive the
        message now become `sending` (checked here, per recipient, just before their send), the
        others `skipped`. Each row moves by compare-and-set on `pending` (a conditional UPDATE),
        so a second process never takes the same delivery; it may see fewer than it looked at.
        The one place a delivery is claimed (a SKIP LOCKED variant belongs here)."""
        ids = list(
            await self._session.scalars(
                claimable(  # PostgreSQL: rows another instance is claiming are skipped
                    select(Delivery.id)
                    .where(Delivery.campaign_id == campaign_id, Delivery.status == "pending")
                    .order_by(Delivery.id)
                    .limit(limit)
                )
            )
        )
        if not ids:
            return Claim([], 0, 0)
        eligible = exists().where(User.id == Delivery.user_id, rules.of_user(now))
        rows = (
            await self._session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), Delivery.status == "pending", eligible)
                .values(status="sending", attempts=Delivery.attempts + 1)
                .returning(Delivery.id, Delivery.user_id, Delivery.attempts)
                .execution_options(synchronize_session=False)
            )
        ).all()
        skipped = await self._session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.status == "pending")
            .values(status="skipped")
            .execution_options(synchronize_session=False)
        )
        languages: dict[int, str] = {}
        if rows:
            found = await self._session.execute(
                select(User.id, User.language).where(User.id.in_([r.user_id for r in rows]))
            )
            languages = {uid: language for uid, language in found.all()}
        claimed = [
            Claimed(r.id, r.user_id, r.attempts, languages.get(r.user_id, ""))
            for r in sorted(rows, key=lambda r: r.id)
        ]
        return Claim(claimed, int(skipped.rowcount), len(ids))  # type: ignore[attr-defined]

    async def record_outcomes(
        self,
        outcomes: Sequence[tuple[int, str, int | None, datetime | None]],
        *,
        blocked: Sequence[int],
        told: Sequence[int],
        notice_version: str | None,
        now: datetime,
    ) -> None:
        """Write a batch of delivery outcomes (id, status, message id, sent at) of deliveries
        this process claimed, mark users who blocked the bot, and those told of a policy
        version."""
        if outcomes:
            # One statement for the batch (an executemany was one round trip per row).
            def by_id(column: Any, values: dict[int, Any], kind: Any) -> Any:
                whens = {key: literal(value, kind) for key, value in values.items()}
                return case(whens, value=Delivery.id, else_=column) if whens else column

            await self._session.execute(
                update(Delivery)
                .where(Delivery.id.in_([o[0] for o in outcomes]), Delivery.status == "sending")
                .values(
                    status=by_id(Delivery.status, {o[0]: o[1] for o in outcomes}, String),
                    message_id=by_id(
                        Delivery.message_id,
                        {o[0]: o[2] for o in outcomes if o[2] is not None},
                        Integer,
                    ),
                    sent_at=by_id(
                        Delivery.sent_at,
                        {o[0]: o[3] for o in outcomes if o[3] is not None},
                        UTCDateTime,
                    ),
                )
                .execution_options(synchronize_session=False)
            )
        if blocked:
            await self._session.execute(
                update(User)
                .where(User.id.in_(blocked))
                .values(blocked_bot=True)
                .execution_options(synchronize_session=False)
            )
        if told and notice_version is not None:
            await self._session.execute(
                update(User)
                .where(User.id.in_(told))
                .values(notice_version=notice_version, notice_shown_at=now)
                .execution_options(synchronize_session=False)
            )

    async def cancel(self, campaign_id: int) -> bool:
        return await self._move(campaign_id, "draft", "cancelled")

    async def finish(self, campaign_id: int, now: datetime) -> None:
        await self._move(campaign_id, "sending", "done", finished_at=now)

    async def unfinished(self) -> list[int]:
        rows = await self._session.scalars(
            select(Campaign.id).where(Campaign.status == "sending").order_by(Campaign.id)
        )
        return list(rows)

    async def mark_interrupted(self, campaign_id: int) -> int:
        """Deliveries caught mid-call by a crash: maybe delivered, so never sent again. Called by
        the one instance that runs the campaign (storage.dialect.exclusive)."""
        result = await self._session.execute(
            update(Delivery)
            .where(Delivery.campaign_id == campaign_id, Delivery.status == "sending")
            .values(status="uncertain")
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def counts(self, campaign_id: int) -> dict[str, int]:
        rows = await self._session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.campaign_id == campaign_id)
            .group_by(Delivery.status)
        )
        return {status: int(n) for status, n in rows.all()}

    async def deliveries(self, campaign_id: int) -> list[Delivery]:
        rows = await self._session.scalars(
            select(Delivery).where(Delivery.campaign_id == campaign_id).order_by(Delivery.id)
        )
        return list(rows)


_HOLD_UNTIL = select(func.max(Request.hold_until)).where(
    Request.user_id == bindparam("uid"),
    Request.status == "blocked",
    Request.hold_until > bindparam("now", type_=UTCDateTime),
)


class RequestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, **values: Any) -> Request:
        request = Request(**values)
        self._session.add(request)
        await self._session.flush()
        return request

    async def get(self, request_id: int) -> Request | None:
        return await self._session.get(Request, request_id, populate_existing=True)

    async def say(
        self, request_id: int, at: datetime, author: str, kind: str, text: str, staff_id: int | None
    ) -> None:
        self._session.add(
            RequestMessage(
                request_id=request_id, at=at, author=author, kind=kind, text=text, staff_id=staff_id
            )
        )
        await self._session.flush()

    async def messages(self, request_id: int) -> list[RequestMessage]:
        rows = await self._session.scalars(
            select(RequestMessage)
            .where(RequestMessage.request_id == request_id)
            .order_by(RequestMessage.id)
        )
        return list(rows)

    async def open_of_type(
        self, user_id: int, kind: str, statuses: frozenset[str]
    ) -> Request | None:
        return await self._session.scalar(
            select(Request)
            .where(Request.user_id == user_id, Request.type == kind, Request.status.in_(statuses))
            .order_by(Request.id)
            .limit(1)
        )

    async def said(self, request_id: int, kind: str) -> bool:
        """Whether a message of this kind was recorded on the request (e.g. an extension)."""
        found = await self._session.scalar(
            select(RequestMessage.id)
            .where(RequestMessage.request_id == request_id, RequestMessage.kind == kind)
            .limit(1)
        )
        return found is not None

    async def last_staff_ask(self, request_id: int) -> RequestMessage | None:
        """The latest question or clarification staff asked on the request."""
        return await self._session.scalar(
            select(RequestMessage)
            .where(
                RequestMessage.request_id == request_id,
                RequestMessage.kind.in_(("question", "clarify")),
            )
            .order_by(RequestMessage.id.desc())
            .limit(1)
        )

    async def of_user(self, user_id: int) -> list[Request]:
        rows = await self._session.scalars(
            select(Request).where(Request.user_id == user_id).order_by(Request.id.desc())
        )
        return list(rows)

    async def waiting_for(self, user_id: int) -> Request | None:
        """The user's most recent request that waits for their clarification."""
        return await self._session.scalar(
            select(Request)
            .where(Request.user_id == user_id, Request.status == "waiting_user")
            .order_by(Request.id.desc())
            .limit(1)
        )

    async def open_by_due(self, statuses: frozenset[str]) -> list[Request]:
        rows = await self._session.scalars(
            select(Request).where(Request.status.in_(statuses)).order_by(Request.due_at, Request.id)
        )
        return list(rows)

    async def decide(
        self, request_id: int, expected: str, *, due_seen: datetime | None = None, **values: Any
    ) -> bool:
        """Compare-and-set: change the request only if its status is still `expected` (what the
        deciding staff member saw) and, with `due_seen`, its due date too (a change that keeps
        the status, like an extension); False when someone else decided first."""
        query = update(Request).where(Request.id == request_id, Request.status == expected)
        if due_seen is not None:
            query = query.where(Request.due_at == due_seen)
        result = await self._session.execute(
            query.values(**values).execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def claim_release(self, request_id: int, now: datetime) -> bool:
        """Take a legal hold whose date has come for this worker alone (its erasure follows in
        the same transaction); False when another worker took it, or is writing the request
        (PostgreSQL: FOR UPDATE SKIP LOCKED, never waited for; the next check comes back).
        Compare-and-set: the hold must still be in force and due, whatever the caller read."""
        due = (Request.status == "blocked", Request.hold_until <= now)
        mine = await self._session.scalar(
            claimable(select(Request.id).where(Request.id == request_id, *due))
        )
        if mine is None:
            return False
        result = await self._session.execute(
            update(Request)
            .where(Request.id == request_id, *due)
            .values(status="done", closed_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def count_undelivered(self, request_id: int) -> None:
        await self._session.execute(
            update(Request)
            .where(Request.id == request_id)
            .values(undelivered=Request.undelivered + 1)
            .execution_options(synchronize_session=False)
        )

    async def hold_until(self, user_id: int, now: datetime) -> datetime | None:
        return await self._session.scalar(_HOLD_UNTIL, {"uid": user_id, "now": now})

    async def expired_holds(self, now: datetime) -> list[Request]:
        rows = await self._session.scalars(
            select(Request)
            .where(Request.status == "blocked", Request.hold_until <= now)
            .order_by(Request.id)
        )
        return list(rows)

    async def count(self) -> int:
        return int(await self._session.scalar(select(func.count(Request.id))) or 0)

    async def register(self, *, batch: int = 500) -> AsyncIterator[tuple[Any, ...]]:
        """Every request's register columns (none of them personal, so nothing is decrypted),
        oldest first, fetched `batch` rows at a time: a register of any size streams."""
        query = (
            select(
                Request.id,
                Request.type,
                Request.user_id,
                Request.received_at,
                Request.due_at,
                Request.status,
                Request.closed_at,
                Request.handled_by,
            )
            .order_by(Request.id)
            .execution_options(yield_per=batch)
        )
        async for row in await self._session.stream(query):
            yield tuple(row)

    async def link(self, chat_id: int, message_id: int, request_id: int) -> None:
        await self._session.execute(
            upsert(self._session, RelayLink)
            .values(chat_id=chat_id, message_id=message_id, request_id=request_id)
            .on_conflict_do_nothing()
        )

    async def relayed_in(self, chat_id: int, user_id: int) -> list[int]:
        """Messages in `chat_id` linked to the user's requests, other than their cards: what
        was relayed there (texts and file copies)."""
        rows = await self._session.scalars(
            select(RelayLink.message_id)
            .join(Request, Request.id == RelayLink.request_id)
            .where(
                RelayLink.chat_id == chat_id,
                Request.user_id == user_id,
                (Request.card_message_id.is_(None))
                | (Request.card_message_id != RelayLink.message_id),
            )
            .order_by(RelayLink.message_id)
        )
        return list(rows)

    async def by_message(self, chat_id: int, message_id: int) -> Request | None:
        return await self._session.scalar(
            select(Request)
            .join(RelayLink, RelayLink.request_id == Request.id)
            .where(RelayLink.chat_id == chat_id, RelayLink.message_id == message_id)
            .execution_options(populate_existing=True)
        )


TO_USER_KINDS = (
    "to_user",
    "copy_user",
)  # bot.delivery.outbox.Kind values delivered into a user's chat
CARD_KINDS = ("card", "card_edit", "to_staff", "copy_staff")  # threaded under one request's card


def outbox_lane(
    kind: str, user_id: int | None, request_id: int | None, message_id: int | None
) -> str:
    """The lane an outbox item keeps its order in: one user's chat, one request's card, one
    message to redact or delete, or the admin group's other messages."""
    if kind in TO_USER_KINDS:
        return f"chat:{user_id}"
    if kind in CARD_KINDS:
        return f"card:{request_id}"
    if kind in ("redact", "unrelay"):
        return f"message:{message_id}"
    return "staff"


def _heads_its_lane(item: Any) -> ColumnElement[bool]:
    """`item` (the outbox or an alias of it) may be claimed now: `pending`, due, and heading its
    lane, i.e. no other item of the lane is being sent and none before it waits (an item
    retried later holds its lane until it is done)."""
    other = aliased(OutboxItem)
    return and_(
        item.status == "pending",
        item.next_attempt_at <= bindparam("now", type_=UTCDateTime),
        ~exists().where(
            other.lane == item.lane,
            other.id != item.id,
            other.status.in_(("pending", "sending")),  # the lane's unfinished items (an index)
            (other.status == "sending") | (other.id < item.id),
        ),
    )


# The outbox claim, built once: the oldest claimable item (read from an alias, so it is not
# correlated with the UPDATE around it), and the same condition again as the compare-and-set.
_CANDIDATE = aliased(OutboxItem)
_OLDEST_HEAD = (
    select(_CANDIDATE.id).where(_heads_its_lane(_CANDIDATE)).order_by(_CANDIDATE.id).limit(1)
)
_STILL_HEAD = _heads_its_lane(OutboxItem)


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self.added = False  # rows added since the last commit: the commit wakes the outbox

    async def add(
        self,
        *,
        kind: str,
        now: datetime,
        user_id: int | None = None,
        request_id: int | None = None,
        text: str | None = None,
        chat_id: int | None = None,
        message_id: int | None = None,
        confirm_message_id: int | None = None,
    ) -> OutboxItem:
        item = OutboxItem(
            created_at=now,
            kind=kind,
            user_id=user_id,
            request_id=request_id,
            text=text,
            chat_id=chat_id,
            message_id=message_id,
            confirm_message_id=confirm_message_id,
            lane=outbox_lane(kind, user_id, request_id, message_id),
            status="pending",
            attempts=0,
            repeated=False,
            next_attempt_at=now,
        )
        self._session.add(item)
        self.added = True
        await self._session.flush()
        return item

    async def unfinished(self, limit: int = 500) -> list[OutboxItem]:
        """Pending items and those another worker is sending (they hold their lane), oldest
        first."""
        rows = await self._session.scalars(
            select(OutboxItem)
            .where(OutboxItem.status.in_(("pending", "sending")))
            .order_by(OutboxItem.id)
            .limit(limit)
        )
        return list(rows)

    async def get(self, item_id: int) -> OutboxItem | None:
        return await self._session.get(OutboxItem, item_id, populate_existing=True)

    async def any_due(self, now: datetime) -> bool:
        """Whether an item waits to be sent: read-only, so an idle worker's pass opens no write
        transaction (on SQLite the claim's UPDATE takes the write lock even when it matches
        nothing, and restarts the WAL an erasure's compaction has just emptied)."""
        due = exists().where(OutboxItem.status == "pending", OutboxItem.next_attempt_at <= now)
        return bool(await self._session.scalar(select(due)))

    async def claim(self, now: datetime, *, skip_lanes: Collection[str] = ()) -> OutboxItem | None:
        """Take the oldest due item that heads its lane (none of `skip_lanes`) for this worker
        alone, `pending` -> `sending`; None when there is none.

        One statement: the candidate is read with FOR UPDATE SKIP LOCKED on PostgreSQL
        (storage.dialect.claimable), so an item another instance is claiming is passed over,
        never waited for, and the UPDATE around it is the compare-and-set (still `pending`,
        due, heading its lane) that SQLite, one writer at a time, decides by alone. An item
        heads its lane when no other item of the lane is being sent and none before it waits:
        a lane's items go one at a time, in order, whichever instance claims them. No advisory
        lock per lane is needed for that: the only item of a lane any claim can take is its
        head, and while one claimer holds the head's row lock another either skips that row
        (and finds no other head in the lane: the locked one is still `pending` to it) or,
        after the claim's commit, sees it `sending`."""
        query = _OLDEST_HEAD
        if skip_lanes:
            query = query.where(_CANDIDATE.lane.not_in(list(skip_lanes)))
        item_id = await self._session.scalar(
            update(OutboxItem)
            .where(OutboxItem.id == claimable(query).scalar_subquery(), _STILL_HEAD)
            .values(status="sending", attempts=OutboxItem.attempts + 1, claimed_at=now)
            .returning(OutboxItem.id)
            .execution_options(synchronize_session=False),
            {"now": now},
        )
        return None if item_id is None else await self.get(item_id)

    async def recover(self, before: datetime) -> int:
        """Items left `sending` by a worker that died mid-call (claimed before `before`): maybe
        delivered, so they go out again marked as a possible repeat (at least once). Rows
        another instance is writing right now (the item's outcome) are skipped, not waited
        for; the compare-and-set on `sending` leaves an item that ended meanwhile alone."""

        def stale(item: Any) -> tuple[ColumnElement[bool], ...]:
            return item.status == "sending", item.claimed_at < before

        found = aliased(OutboxItem)  # not correlated with the UPDATE around it
        result = await self._session.execute(
            update(OutboxItem)
            .where(
                OutboxItem.id.in_(claimable(select(found.id).where(*stale(found)))),
                *stale(OutboxItem),
            )
            .values(status="pending", repeated=True)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def for_user(self, user_id: int) -> list[OutboxItem]:
        rows = await self._session.scalars(
            select(OutboxItem).where(OutboxItem.user_id == user_id).order_by(OutboxItem.id)
        )
        return list(rows)


class DisclosureRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, **values: Any) -> Disclosure:
        disclosure = Disclosure(**values)
        self._session.add(disclosure)
        await self._session.flush()
        return disclosure

    async def of_user(self, user_id: int, since: datetime | None = None) -> list[Disclosure]:
        query = select(Disclosure).where(Disclosure.user_id == user_id)
        if since is not None:
            query = query.where(Disclosure.at >= since)
        return list((await self._session.scalars(query.order_by(Disclosure.at))).all())


APPEND_ONLY = ("consent_events", "audit_log")
# Every table an erasure deletes from or rewrites: compacted afterwards (storage.dialect.compact).
ERASED_TABLES = (
    "data_keys",
    "users",
    "guardian_links",
    "guardian_confirmations",
    "fsm_states",
    "consent_events",
    "consent_states",
    "audit_log",
    "deliveries",
    "requests",
    "request_messages",
    "relay_links",
    "outbox",
    "disclosures",
)


class ErasureRepository:
    """Removes one person from every table; keeps only pseudonymous records the law needs."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def keep(self, pseudonym: str, kind: str, at: datetime, detail: dict[str, Any]) -> None:
        self._session.add(
            ErasureRecord(
                pseudonym=pseudonym, kind=kind, at=at, detail=json.dumps(detail, sort_keys=True)
            )
        )
        await self._session.flush()

    async def delete_records_before(self, cutoff: datetime) -> int:
        result = await self._session.execute(delete(ErasureRecord).where(ErasureRecord.at < cutoff))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def records(self, pseudonym: str) -> list[ErasureRecord]:
        rows = await self._session.scalars(
            select(ErasureRecord)
            .where(ErasureRecord.pseudonym == pseudonym)
            .order_by(ErasureRecord.id)
        )
        return list(rows)

    async def sent_marketing(self, user_id: int) -> list[tuple[int, datetime]]:
        rows = await self._session.execute(
            select(Delivery.campaign_id, Delivery.sent_at).where(
                Delivery.user_id == user_id, Delivery.status == "sent"
            )
        )
        return [(cid, at) for cid, at in rows.all() if at is not None]

    async def keyless(self) -> list[int]:
        """People whose data key is gone although their rows are here: erased after the backup
        these rows were restored from. Conversations without a key are dropped on the way."""
        await self._session.execute(
            delete(FsmRecord).where(
                FsmRecord.data.is_not(None),
                ~exists().where(DataKey.owner_id == FsmRecord.user_id),
            )
        )
        sealed = (User.username, User.first_name, User.last_name, User.phone)
        rows = await self._session.scalars(
            select(User.id)
            .where(
                ~exists().where(DataKey.owner_id == User.id),
                or_(*(column.is_not(None) for column in sealed)),
            )
            .order_by(User.id)
        )
        return list(rows)

    async def erase(self, user_id: int, pseudonym: str) -> None:
        """Delete every row about the person. Their data key goes first: from then on no copy
        of their sealed fields (a backup, a dump, an old WAL) can be read. The ledger and the
        audit log refuse UPDATEs, so they are opened for this same transaction only, to replace
        the person's ID where they acted for someone else."""
        run = self._session.execute
        await run(delete(DataKey).where(DataKey.owner_id == user_id))
        ring_of(self._session.sync_session).destroyed(user_id)
        async with AppendOnlyLifted(self._session, APPEND_ONLY):
            # Where they acted for others (as a legal representative): the act stays, anonymised.
            await run(
                update(ConsentEvent).where(ConsentEvent.actor_id == user_id).values(actor_id=0)
            )
            await run(
                update(GuardianConfirmation)
                .where(GuardianConfirmation.guardian_id == user_id)
                .values(guardian_id=0)
            )
            await run(
                update(GuardianLink).where(GuardianLink.used_by == user_id).values(used_by=None)
            )
            await run(
                update(AuditEntry)
                .where(AuditEntry.subject == str(user_id))
                .values(subject=pseudonym)
            )
            await run(delete(AuditEntry).where(AuditEntry.actor_id == user_id))
            await run(
                delete(FsmRecord).where(
                    (FsmRecord.user_id == user_id) | (FsmRecord.chat_id == user_id)
                )
            )
            await run(delete(RelayLink).where(RelayLink.chat_id == user_id))
            await run(delete(OutboxItem).where(OutboxItem.user_id == user_id))
            # ON DELETE CASCADE removes requests (with their messages, relay links, outbox
            # items), consent events and state, deliveries, guardian links and confirmations,
            # disclosures.
            await run(delete(User).where(User.id == user_id))


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self, *, at: datetime, actor_id: int, action: str, subject: str | None, allowed: bool
    ) -> None:
        self._session.add(
            AuditEntry(at=at, actor_id=actor_id, action=action, subject=subject, allowed=allowed)
        )
        await self._session.flush()

    async def entries(self) -> list[AuditEntry]:
        return list((await self._session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all())


class AttachmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, **values: Any) -> RequestAttachment:
        attachment = RequestAttachment(status="pending", **values)
        self._session.add(attachment)
        await self._session.flush()
        return attachment

    async def get(self, attachment_id: int) -> RequestAttachment | None:
        return await self._session.get(RequestAttachment, attachment_id, populate_existing=True)

    async def of_request(self, request_id: int) -> list[RequestAttachment]:
        rows = await self._session.scalars(
            select(RequestAttachment)
            .where(RequestAttachment.request_id == request_id)
            .order_by(RequestAttachment.id)
        )
        return list(rows)


class RoleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, user_id: int) -> str | None:
        row = await self._session.get(StaffRole, user_id, populate_existing=True)
        return None if row is None else row.role

    async def set(self, user_id: int, role: str, *, set_by: int, now: datetime) -> None:
        row = await self._session.get(StaffRole, user_id)
        if row is None:
            self._session.add(StaffRole(user_id=user_id, role=role, set_by=set_by, set_at=now))
        else:
            row.role, row.set_by, row.set_at = role, set_by, now
        await self._session.flush()

    async def every(self) -> list[StaffRole]:
        rows = await self._session.scalars(select(StaffRole).order_by(StaffRole.user_id))
        return list(rows)


class TemplateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, *, name: str, texts: str, created_by: int, now: datetime) -> AnswerTemplate:
        template = AnswerTemplate(name=name, texts=texts, created_by=created_by, created_at=now)
        self._session.add(template)
        await self._session.flush()
        return template

    async def get(self, template_id: int) -> AnswerTemplate | None:
        return await self._session.get(AnswerTemplate, template_id)

    async def every(self) -> list[AnswerTemplate]:
        rows = await self._session.scalars(select(AnswerTemplate).order_by(AnswerTemplate.id))
        return list(rows)

    async def count(self) -> int:
        return int(await self._session.scalar(select(func.count(AnswerTemplate.id))) or 0)

    async def delete(self, template_id: int) -> bool:
        result = await self._session.execute(
            delete(AnswerTemplate).where(AnswerTemplate.id == template_id)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]


class StatsRepository:
    """Plain rows for /stats, limited to the period asked for."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def received(self, start: datetime, end: datetime) -> list[tuple[str, datetime]]:
        rows = await self._session.execute(
            select(Request.type, Request.received_at).where(
                Request.received_at >= start, Request.received_at < end
            )
        )
        return [(kind, at) for kind, at in rows.all()]

    async def closed(
        self, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime, datetime]]:
        rows = await self._session.execute(
            select(Request.received_at, Request.due_at, Request.closed_at).where(
                Request.closed_at >= start, Request.closed_at < end
            )
        )
        return [(received, due, closed) for received, due, closed in rows.all()]

    async def overdue(self, statuses: frozenset[str], now: datetime) -> int:
        query = select(func.count(Request.id)).where(
            Request.status.in_(statuses), Request.due_at < now
        )
        return int(await self._session.scalar(query) or 0)

    async def ledger_until(self, end: datetime) -> list[tuple[int, str, bool, datetime]]:
        rows = await self._session.execute(
            select(
                ConsentEvent.user_id, ConsentEvent.purpose, ConsentEvent.granted, ConsentEvent.at
            ).where(ConsentEvent.at < end)
        )
        return [(u, p, g, at) for u, p, g, at in rows.all()]

    async def joined_until(self, end: datetime) -> list[datetime]:
        rows = await self._session.scalars(select(User.created_at).where(User.created_at < end))
        return list(rows)

    async def campaigns(self, kind: str, start: datetime, end: datetime) -> tuple[int, int]:
        """Campaigns of `kind` started in the period, and their messages delivered."""
        started = select(Campaign.id).where(
            Campaign.kind == kind, Campaign.started_at >= start, Campaign.started_at < end
        )
        count = await self._session.scalar(select(func.count()).select_from(started.subquery()))
        delivered = await self._session.scalar(
            select(func.count(Delivery.id)).where(
                Delivery.campaign_id.in_(started), Delivery.status == "sent"
            )
        )
        return int(count or 0), int(delivered or 0)

    async def withdrawals(self, source: str, start: datetime, end: datetime) -> int:
        query = select(func.count(ConsentEvent.id)).where(
            ConsentEvent.source == source,
            ConsentEvent.granted.is_(False),
            ConsentEvent.at >= start,
            ConsentEvent.at < end,
        )
        return int(await self._session.scalar(query) or 0)


class BreachRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, **values: Any) -> Breach:
        breach = Breach(**values)
        self._session.add(breach)
        await self._session.flush()
        return breach

    async def get(self, breach_id: int) -> Breach | None:
        return await self._session.get(Breach, breach_id, populate_existing=True)

    async def every(self) -> list[Breach]:
        return list((await self._session.scalars(select(Breach).order_by(Breach.id))).all())

    async def by_campaign(self, campaign_id: int) -> Breach | None:
        return await self._session.scalar(select(Breach).where(Breach.campaign_id == campaign_id))

    async def authority_open(self) -> list[Breach]:
        """Breaches whose authority notice is not yet marked sent, by deadline."""
        rows = await self._session.scalars(
            select(Breach)
            .where(Breach.authority_notified_at.is_(None))
            .order_by(Breach.authority_due_at, Breach.id)
        )
        return list(rows)

    async def mark_notified(self, breach_id: int, staff_id: int, now: datetime) -> bool:
        result = await self._session.execute(
            update(Breach)
            .where(Breach.id == breach_id, Breach.authority_notified_at.is_(None))
            .values(authority_notified_at=now, authority_notified_by=staff_id)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def claim_telling(self, breach_id: int, campaign_id: int, now: datetime) -> bool:
        result = await self._session.execute(
            update(Breach)
            .where(Breach.id == breach_id, Breach.users_told_at.is_(None))
            .values(users_told_at=now, campaign_id=campaign_id)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    def existing_users(self, ids: list[int] | None) -> Audience:
        query = select(User.id)
        if ids is not None:
            query = query.where(User.id.in_(ids))
        return query

    def consent_holders(self, purpose: str) -> Audience:
        return select(ConsentState.user_id).where(
            ConsentState.purpose == purpose, ConsentState.granted.is_(True)
        )


# The session info key of the callables `Repositories.commit` calls after outbox rows.
OUTBOX_LISTENERS = "outbox_listeners"


class Repositories:
    """Everything a handler may touch in the database, over one session (one per update)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.users = UserRepository(session)
        self.guardians = GuardianRepository(session)
        self.state = BotStateRepository(session)
        self.consents = ConsentRepository(session)
        self.audit = AuditRepository(session)
        self.campaigns = CampaignRepository(session)
        self.requests = RequestRepository(session)
        self.outbox = OutboxRepository(session)
        self.disclosures = DisclosureRepository(session)
        self.erasure = ErasureRepository(session)
        self.breaches = BreachRepository(session)
        self.roles = RoleRepository(session)
        self.attachments = AttachmentRepository(session)
        self.templates = TemplateRepository(session)
        self.stats = StatsRepository(session)

    async def load_sender(self, user_id: int, fsm_key: str) -> tuple[User | None, FsmRow]:
        """The sender and their FSM row at the start of an update, in one statement."""
        user, fsm, represents = await self.users.load(user_id, fsm_key)
        self.guardians.represents[user_id] = represents
        return user, fsm

    async def commit(self) -> None:
        """Commit this unit of work, with the conversation (FSM) changes of the update; once
        committed, outbox rows it added wake the outbox (`on_outbox_commit`)."""
        scope = current_scope()
        if scope is not None and scope.session is self.session and scope.changed:
            await scope.flush()
        await self.session.commit()
        self.consents.committed()
        if self.outbox.added:
            self.outbox.added = False
            for listener in self.session.info.get(OUTBOX_LISTENERS, ()):
                listener()


def on_outbox_commit(
    sessions: async_sessionmaker[AsyncSession], listener: Callable[[], None]
) -> None:
    """Call `listener` after every commit, over a session of `sessions`, that added outbox
    rows: the outbox worker is woken by the commit itself, never by hand."""
    sessions.kw["info"].setdefault(OUTBOX_LISTENERS, []).append(listener)
