"""Erasure: the person leaves every table and the FSM; what the law needs stays pseudonymous."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core.clock import Clock
from bot.core.i18n import translator
from bot.core.policy import PolicyPack
from bot.domain.admin_chat import AdminChat
from storage.db import checkpoint, compact, scrub
from storage.dialect import (
    Space,
    exclusive,
    horizon_passed,
    later_mark,
    lock_for_transaction,
    transaction_mark,
)
from storage.enums import OutboxKind, RecordKind
from storage.repositories import Repositories

log = logging.getLogger(__name__)
COMPACT_PENDING = "erasure:compact_pending"
# What a pending compaction does: a full rewrite (VACUUM, after sealing a plaintext database in
# place, see migration 0006) or, after an erasure, only folding and truncating the WAL (SQLite;
# PostgreSQL rewrites the erased tables either way).
FULL, SCRUB = "1", "scrub"


@dataclass(frozen=True)
class Pending:
    """The value of COMPACT_PENDING: what to compact (FULL or SCRUB); the mark of the newest
    erasing transaction (storage.dialect.transaction_mark), whose deleted rows PostgreSQL keeps
    for older transactions until they end, so the compaction waits for it; and how many erasures
    wait, so that every erasure changes the value (the compaction clears only the value it saw).
    Migration 0006 writes a bare FULL: no erasure to wait for."""

    kind: str
    mark: str | None = None
    erasures: int = 0

    @classmethod
    def parse(cls, value: str) -> Pending:
        kind, *rest = value.split(" ")
        if len(rest) != 2:  # a bare kind (migration 0006, or written before marks)
            return cls(kind)
        return cls(kind, rest[0], int(rest[1]))

    def __str__(self) -> str:
        return self.kind if self.mark is None else f"{self.kind} {self.mark} {self.erasures}"

    def after_erasure(self, mark: str) -> Pending:
        """One more erasure, marked `mark`: a full rewrite stays full; the later mark is kept,
        whichever order the erasures commit in, so the compaction waits for all of them."""
        return replace(self, mark=later_mark(self.mark, mark), erasures=self.erasures + 1)


async def note_erasure(session: AsyncSession) -> None:
    """Within the erasing transaction, after its deletes: the compaction is due, and must wait
    for the transactions older than this one. Erasures take turns on the flag (a transaction
    lock on PostgreSQL; SQLite serialises writers), so none overwrites another's mark."""
    await lock_for_transaction(session, Space.COMPACTION, COMPACT_PENDING)
    state = Repositories(session).state
    value = await state.get(COMPACT_PENDING)
    pending = Pending(SCRUB) if value is None else Pending.parse(value)
    await state.set(COMPACT_PENDING, str(pending.after_erasure(await transaction_mark(session))))


def pseudonym(secret: str, user_id: int) -> str:
    """A keyed hash of the Telegram ID: stable for the operator, meaningless without the key."""
    return hmac.new(secret.encode(), str(user_id).encode(), hashlib.sha256).hexdigest()


class Eraser:
    def __init__(self, repo: Repositories, clock: Clock, pack: PolicyPack, secret: str) -> None:
        self._repo = repo
        self._clock = clock
        self._pack = pack
        self._secret = secret

    async def erase(self, user_id: int, *, cause: str) -> str:
        """Erase one person within the caller's transaction; returns the pseudonym their
        records keep."""
        key = pseudonym(self._secret, user_id)
        now = self._clock.now()
        for request in await self._repo.requests.of_user(user_id):
            # Each of the operator's systems' outcome (GDPR art. 19: every recipient told).
            systems = [
                {
                    "system": job.system_id,
                    "status": job.status,
                    "at": _iso(job.done_at),
                    "by": job.done_by,
                }
                for job in await self._repo.jobs.of_request(request.id)
            ]
            await self._repo.erasure.keep(
                key,
                RecordKind.REQUEST,
                request.received_at,
                {
                    "number": request.id,
                    "type": request.type,
                    "status": request.status,
                    "received_at": _iso(request.received_at),
                    "due_at": _iso(request.due_at),
                    "closed_at": _iso(request.closed_at),
                    **({"systems": systems} if systems else {}),
                },
            )
        sent = await self._repo.erasure.sent_marketing(user_id)
        if self._pack.marketing is not None and sent:
            # Only the marketing purpose's events, as plain rows: a long ledger stays cheap.
            timeline = await self._repo.consents.timeline(user_id, self._pack.marketing.purpose)
            for campaign_id, sent_at in sent:
                before = [entry for entry in timeline if entry[0] <= sent_at]
                basis = before[-1] if before and before[-1][1] else None
                await self._repo.erasure.keep(
                    key,
                    RecordKind.MARKETING_SENT,
                    sent_at,
                    {
                        "campaign": campaign_id,
                        "consent_given_at": _iso(basis[0]) if basis else None,
                        "consent_policy_version": basis[2] if basis else None,
                    },
                )
        await self._repo.erasure.keep(key, RecordKind.ERASED, now, {"cause": cause})
        await self._repo.erasure.erase(user_id, key)
        return key


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


Claim = Callable[[Repositories], Awaitable[bool]]


class ErasureService:
    """Carries out an erasure end to end. One transaction erases the person and stores what is
    to be redacted in the admin group (cards and relayed messages) as outbox items, so a crash
    cannot leave a card unredacted. Only once it is committed is the person told; that notice
    is sent once, not queued, because queueing it would keep their chat ID after the erasure."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        pack: PolicyPack,
        secret: str,
        admin_chat: AdminChat,
        staff_locale: str,
        engine: AsyncEngine,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._pack = pack
        self._secret = secret
        self._admin_chat = admin_chat
        self._t = translator(staff_locale)
        self._engine = engine
        self._compact = partial(scrub, engine)
        self._vacuum = partial(compact, engine)
        self._checkpoint = partial(checkpoint, engine)

    async def execute(
        self,
        bot: Bot,
        user_id: int,
        *,
        cause: str,
        notice: str,
        claim: Claim | None = None,
        compact: bool = True,
    ) -> str | None:
        """`notice` is the locale key of what the user is told once their data is gone;
        `claim` takes the triggering work for this worker alone (False: someone else did);
        `compact=False` leaves the compaction to the caller (one for a batch)."""
        async with self._sessions() as session:
            repo = Repositories(session)
            if claim is not None and not await claim(repo):
                await session.rollback()
                return None
            user = await repo.users.get(user_id)
            if user is None:
                await session.rollback()
                return None
            admin = self._admin_chat.id
            told = translator(user.language)(notice)
            # Cards to redact (edit) and what was relayed under them to delete are stored as
            # outbox items in this transaction, so a crash cannot leave one behind.
            cards = [r.card_message_id for r in await repo.requests.of_user(user_id)]
            relayed = await repo.requests.relayed_in(admin, user_id)
            key = await Eraser(repo, self._clock, self._pack, self._secret).erase(
                user_id, cause=cause
            )
            now = self._clock.now()
            redacted = self._t("card.erased", key=key[:12])
            for message_id in filter(None, cards):
                await repo.outbox.add(
                    kind=OutboxKind.REDACT,
                    chat_id=admin,
                    message_id=message_id,
                    text=redacted,
                    now=now,
                )
            blank = json.dumps({"erased": redacted, "key": key[:12]})
            for message_id in relayed:
                await repo.outbox.add(
                    kind=OutboxKind.UNRELAY,
                    chat_id=admin,
                    message_id=message_id,
                    text=blank,
                    now=now,
                )
            await note_erasure(session)
            # One transaction in its own session (not an update's): the erasure is durable
            # before the person is told and the files are compacted.
            await repo.commit()
        log.info("Erased a person (pseudonym %s…): %s", key[:12], cause)
        with contextlib.suppress(TelegramAPIError):  # they may have blocked the bot
            await bot.send_message(user_id, told)
        if compact:
            await self.compact_if_pending()
        return key

    async def compact_if_pending(self) -> bool:
        """Leave no erased bytes in the database files. Not before every transaction older than
        the erasures has ended (PostgreSQL would copy the erased rows for them), nor while the
        database is busy: False, and the scheduler tries again (bot.delivery.scheduler, every
        CHECK_SECONDS, and after the daily retention run)."""
        async with self._sessions() as session:
            value = await Repositories(session).state.get(COMPACT_PENDING)
        if value is None:
            return False
        pending = Pending.parse(value)
        if pending.mark is not None and not await horizon_passed(self._engine, pending.mark):
            log.info("Compaction after an erasure waits for older transactions; will retry")
            return False
        try:
            await (self._vacuum if pending.kind == FULL else self._compact)()
        except DBAPIError as error:
            log.warning("Compaction after an erasure deferred (%s); will retry", error.orig)
            return False
        async with self._sessions() as session:
            repo = Repositories(session)
            # Only the value compacted for: an erasure that committed meanwhile keeps its flag.
            await repo.state.delete_if(COMPACT_PENDING, value)
            await repo.commit()  # its own session: the flag is gone before the WAL checkpoint
        await self._checkpoint()  # not even the flag's own change lingers in the WAL
        return True

    async def release_holds(self, bot: Bot) -> int:
        """Legal holds whose date has come: the data is erased now, and the user told. Each
        hold is claimed in the erasure's own transaction, so two workers never both act."""
        async with self._sessions() as session:
            expired = await Repositories(session).requests.expired_holds(self._clock.now())
            people = sorted({(r.user_id, r.id) for r in expired if r.user_id is not None})
            # A request registered by staff for someone who does not use the bot: the bot holds
            # no data of theirs to erase; the hold just ends (the claim closes the request).
            outsiders = [r.id for r in expired if r.user_id is None]
        done = 0
        for request_id in outsiders:
            async with self._sessions() as session:
                repo = Repositories(session)
                if await repo.requests.claim_release(request_id, self._clock.now()):
                    await repo.commit()
                    done += 1
        for user_id, request_id in people:
            now = self._clock.now()
            # Every instance runs this check: the lock keeps the others from waiting on the same
            # person, the claim (compare-and-set on the request) lets exactly one of them erase.
            # Keyed by the pseudonym: on SQLite the key names a lock file, and a plain hash of
            # a Telegram ID could be reversed by trying every ID.
            key = pseudonym(self._secret, user_id)
            async with exclusive(self._engine, Space.ERASURE, key) as mine:
                if mine and await self.execute(
                    bot,
                    user_id,
                    cause=f"hold of request {request_id} ended",
                    notice="requests.hold_ended",
                    claim=lambda repo, rid=request_id, at=now: repo.requests.claim_release(rid, at),
                ):
                    done += 1
        return done
