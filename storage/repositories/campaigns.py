"""Campaigns and their deliveries: who a campaign goes to (`Audience`), who may receive it
at the moment it is sent (`Eligibility`), the claim of a batch of deliveries and their
outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialect import claimable
from storage.enums import CampaignStatus, DeliveryStatus, RequestStatus
from storage.models import Campaign, ConsentState, Delivery, Request, User, UTCDateTime

# Who a campaign goes to: a query of user IDs, counted or queued inside the database (a
# campaign to a million users never holds their IDs in memory).
Audience = Select[tuple[int]]


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
                    Request.status == RequestStatus.BLOCKED,
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
    """One delivery of a batch, claimed for its recipient (`language`: theirs)."""

    delivery_id: int
    user_id: int
    attempts: int
    language: str


@dataclass(frozen=True)
class DeliveryBatch:
    """One claimed batch of a campaign's deliveries (`CampaignRepository.claim`): those now
    `sending` (to be sent by the claimer), how many became `skipped`, and how many pending rows
    were looked at (0: none left)."""

    claimed: list[Claimed]
    skipped: int
    seen: int


class CampaignRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, *, kind: str, body: str, created_by: int, now: datetime) -> Campaign:
        campaign = Campaign(
            kind=kind, body=body, status=CampaignStatus.DRAFT, created_by=created_by, created_at=now
        )
        self._session.add(campaign)
        await self._session.flush()
        return campaign

    async def get(self, campaign_id: int) -> Campaign | None:
        return await self._session.get(Campaign, campaign_id, populate_existing=True)

    async def _move(
        self, campaign_id: int, old: CampaignStatus, new: CampaignStatus, **values: Any
    ) -> bool:
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
            campaign_id,
            CampaignStatus.DRAFT,
            CampaignStatus.SENDING,
            started_at=now,
            progress_message_id=progress_message_id,
        ):
            return None
        recipients = audience.subquery()
        result = await self._session.execute(
            insert(Delivery).from_select(
                ["campaign_id", "user_id", "status", "attempts"],
                select(
                    literal(campaign_id, Integer),
                    recipients.c[0],
                    literal(DeliveryStatus.PENDING, String),
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
    ) -> DeliveryBatch:
        """Take up to `limit` pending deliveries at once: those whose recipient may receive the
        message now become `sending` (checked here, per recipient, just before their send), the
        others `skipped`. Each row moves by compare-and-set on `pending` (a conditional UPDATE),
        so a second process never takes the same delivery; it may see fewer than it looked at.
        The one place a delivery is claimed (a SKIP LOCKED variant belongs here)."""
        ids = list(
            await self._session.scalars(
                claimable(  # PostgreSQL: rows another instance is claiming are skipped
                    select(Delivery.id)
                    .where(
                        Delivery.campaign_id == campaign_id,
                        Delivery.status == DeliveryStatus.PENDING,
                    )
                    .order_by(Delivery.id)
                    .limit(limit)
                )
            )
        )
        if not ids:
            return DeliveryBatch([], 0, 0)
        eligible = exists().where(User.id == Delivery.user_id, rules.of_user(now))
        rows = (
            await self._session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.PENDING, eligible)
                .values(status=DeliveryStatus.SENDING, attempts=Delivery.attempts + 1)
                .returning(Delivery.id, Delivery.user_id, Delivery.attempts)
                .execution_options(synchronize_session=False)
            )
        ).all()
        skipped = await self._session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.PENDING)
            .values(status=DeliveryStatus.SKIPPED)
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
        return DeliveryBatch(claimed, int(skipped.rowcount), len(ids))  # type: ignore[attr-defined]

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
                .where(
                    Delivery.id.in_([o[0] for o in outcomes]),
                    Delivery.status == DeliveryStatus.SENDING,
                )
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
        return await self._move(campaign_id, CampaignStatus.DRAFT, CampaignStatus.CANCELLED)

    async def finish(self, campaign_id: int, now: datetime) -> None:
        await self._move(campaign_id, CampaignStatus.SENDING, CampaignStatus.DONE, finished_at=now)

    async def unfinished(self) -> list[int]:
        rows = await self._session.scalars(
            select(Campaign.id)
            .where(Campaign.status == CampaignStatus.SENDING)
            .order_by(Campaign.id)
        )
        return list(rows)

    async def mark_interrupted(self, campaign_id: int) -> int:
        """Deliveries caught mid-call by a crash: maybe delivered, so never sent again. Called by
        the one instance that runs the campaign (storage.dialect.exclusive)."""
        result = await self._session.execute(
            update(Delivery)
            .where(Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.SENDING)
            .values(status=DeliveryStatus.UNCERTAIN)
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
