"""Erasure: every row about one person removed, the pseudonymous records the law needs kept,
and the tables an erasure touches (compacted afterwards)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import chain
from storage.dialect import AppendOnlyLifted
from storage.enums import DeliveryStatus
from storage.models import (
    AuditEntry,
    ConsentEvent,
    DataKey,
    Delivery,
    ErasureRecord,
    FsmRecord,
    GuardianConfirmation,
    GuardianLink,
    OutboxItem,
    RelayLink,
    User,
)
from storage.models_systems import SystemJob
from storage.sealing import ring_of

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
    "system_jobs",
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
                Delivery.user_id == user_id, Delivery.status == DeliveryStatus.SENT
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
        rewritten = await self._chained_rows(user_id)
        await self._mark_erased(user_id)
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
            for source, ids in rewritten.items():  # the chain keeps them, marked rewritten
                await chain.mark_rewritten(self._session, source, ids)
            await run(
                delete(FsmRecord).where(
                    (FsmRecord.user_id == user_id) | (FsmRecord.chat_id == user_id)
                )
            )
            await run(delete(RelayLink).where(RelayLink.chat_id == user_id))
            await run(delete(OutboxItem).where(OutboxItem.user_id == user_id))
            await run(delete(SystemJob).where(SystemJob.user_id == user_id))
            # ON DELETE CASCADE removes requests (with their messages, relay links, outbox
            # items), consent events and state, deliveries, guardian links and confirmations,
            # disclosures.
            await run(delete(User).where(User.id == user_id))

    async def _chained_rows(self, user_id: int) -> dict[str, list[int]]:
        """The evidence rows an erasure rewrites and keeps (storage.chain)."""
        events = await self._session.scalars(
            select(ConsentEvent.id).where(
                ConsentEvent.actor_id == user_id, ConsentEvent.user_id != user_id
            )
        )
        audit = await self._session.scalars(
            select(AuditEntry.id).where(
                AuditEntry.subject == str(user_id), AuditEntry.actor_id != user_id
            )
        )
        return {chain.CONSENTS: list(events), chain.AUDIT: list(audit)}

    async def _mark_erased(self, user_id: int) -> None:
        """The evidence rows an erasure deletes: their chain entries are marked erased."""
        events = await self._session.scalars(
            select(ConsentEvent.id).where(ConsentEvent.user_id == user_id)
        )
        await chain.mark_erased(self._session, chain.CONSENTS, list(events))
        audit = await self._session.scalars(
            select(AuditEntry.id).where(AuditEntry.actor_id == user_id)
        )
        await chain.mark_erased(self._session, chain.AUDIT, list(audit))
