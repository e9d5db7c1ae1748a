"""Scheduled work. Every morning (REMINDER_TIME, operator's time zone) the admin group gets the
open requests by due date; the day of the last reminder is stored, so a restart sends no second
one. Legal holds whose date has come are released, which erases the data; the storage-limitation
job erases idle accounts once a day before the list, which shows its counts. At start and once a
day, while the gap lasts, staff are warned (once a day, whichever instance looks first) of a
coming year without working-day transfer data."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, time

from aiogram import Bot
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import Clock
from bot.core.deadlines import missing_transfers
from bot.core.formatting import fmt_date
from bot.core.i18n import translator
from bot.core.policy import PolicyPack
from bot.core.tasks import cancel_and_wait
from bot.delivery.campaigns import CampaignRunner
from bot.domain.erasure import ErasureService
from bot.domain.requests.carrying import Connected
from bot.domain.requests.finishing import Finisher
from bot.domain.retention import COUNTS_KEY, Retention, RetentionCounts
from storage.enums import OPEN, CampaignKind, OutboxKind
from storage.repositories import Repositories

log = logging.getLogger(__name__)
CHECK_SECONDS = 30.0
STATE_KEY = "reminder:last_day"
CALENDAR_KEY = "calendar_gap:last_day"  # the day the calendar warning was last sent


class Reminders:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        pack: PolicyPack,
        erasure: ErasureService,
        staff_locale: str,
        at: time,
        campaigns: CampaignRunner,
        connected: Connected | None = None,
        finisher: Finisher | None = None,
    ) -> None:
        self._finisher = finisher
        self._sessions = sessions
        self._clock = clock
        self._pack = pack
        self._erasure = erasure
        self._t = translator(staff_locale)
        self._at = at
        self._task: asyncio.Task[None] | None = None
        self.first_pass = asyncio.Event()  # set once the checks at start have run
        self.retention = Retention(sessions, clock, pack, erasure, connected)
        self._campaigns = campaigns
        self._checked_in_force: str | None = None  # the version _tell_in_force last looked at
        self._calendar_checked: date | None = None  # the day warn_calendar last looked

    def due_now(self) -> bool:
        return self._clock.now().astimezone(self._pack.zone).time() >= self._at

    async def tick(self) -> bool:
        """Queue today's reminder if its time has come and nobody has queued it yet."""
        now = self._clock.now()
        local = now.astimezone(self._pack.zone)
        if local.time() < self._at:
            return False
        async with self._sessions() as session:
            repo = Repositories(session)
            if not await repo.state.claim(STATE_KEY, local.date().isoformat()):
                await session.rollback()
                return False
            requests = await repo.requests.open_by_due(OPEN)
            breaches = await repo.breaches.authority_open()
            counts = RetentionCounts.decode(await repo.state.get(COUNTS_KEY))
            if requests or breaches:
                # Rendered when delivered, in pages that each fit a message.
                await repo.outbox.add(kind=OutboxKind.DUE_LIST, now=now)
            if counts is not None and counts.day == local.date().isoformat():
                text = self._t("retention.counts", erased=counts.erased, records=counts.records)
                await repo.outbox.add(kind=OutboxKind.TO_ADMIN, text=text, now=now)
            await repo.commit()  # the day's claim and its list, one transaction of this worker
        return True

    async def announce(self, bot: Bot) -> int | None:
        """Once per version: tell every user of the announced next version before its date.
        Returns the campaign ID; None when there is nothing to announce or it was announced.
        On its date the version becomes current in this running process (and staff are told)."""
        now = self._clock.now()
        self._pack.advance(now)
        upcoming = self._pack.next_policy
        if upcoming is None:
            await self._tell_in_force()
            return None
        async with self._sessions() as session:
            repo = Repositories(session)
            if not await repo.state.claim(f"policy_next:{upcoming.version}", "announced"):
                await session.rollback()
                return None
            campaign = await repo.campaigns.create(
                kind=CampaignKind.POLICY_NEXT, body="", created_by=0, now=now
            )
            audience = repo.users.not_told_of(upcoming.version)
            queued = await repo.campaigns.start(
                campaign.id, audience, now=now, progress_message_id=None
            )
            text = self._t(
                "policy_next.staff",
                version=upcoming.version,
                date=fmt_date(upcoming.effective_date, self._t, self._pack.zone),
                count=queued or 0,
            )
            await repo.outbox.add(kind=OutboxKind.TO_ADMIN, text=text, now=now)
            await repo.commit()  # the campaign and its deliveries exist before its runner starts
        self._campaigns.start(bot, campaign.id)
        return campaign.id

    async def _tell_in_force(self) -> None:
        """Once per version, when a version announced in advance has become current (in this
        process, another instance, or at a start on or after its date): staff are told that it
        applies now and what follows."""
        version = self._pack.policy.version
        if self._checked_in_force == version:
            return
        self._checked_in_force = version
        async with self._sessions() as session:
            repo = Repositories(session)
            announced = await repo.state.get(f"policy_next:{version}") is not None
            if not announced or not await repo.state.claim(f"policy_due:{version}", "told"):
                await session.rollback()
                return
            text = self._t("policy_next.in_force", version=version)
            await repo.outbox.add(kind=OutboxKind.TO_ADMIN, text=text, now=self._clock.now())
            await repo.commit()  # the once-per-version claim and staff's notice, together

    async def warn_calendar(self) -> list[tuple[str, int]]:
        """At every start and once a day while the gap lasts: staff are told when the next 60
        days reach a year whose working-day transfers neither the `holidays` package nor the
        pack's calendar file has (terms counted in working days could end on a wrong day). The
        day is claimed by compare-and-set in bot_state: whichever start or instance looks first
        on a day warns, no other that day. Returns what was told now."""
        now = self._clock.now()
        today = now.astimezone(self._pack.zone).date()
        if self._calendar_checked == today:
            return []
        self._calendar_checked = today
        gaps = missing_transfers(self._pack, today)
        if not gaps:
            return []
        async with self._sessions() as session:
            repo = Repositories(session)
            if not await repo.state.claim(CALENDAR_KEY, today.isoformat()):
                await session.rollback()
                return []
            for country, year in gaps:
                text = self._t("calendar.missing", country=country, year=year)
                await repo.outbox.add(kind=OutboxKind.TO_ADMIN, text=text, now=now)
            await repo.commit()  # the day's claim and its warnings, together
        return gaps

    async def release_holds(self, bot: Bot) -> int:
        """Legal holds whose date has come: with the operator's systems, an erasure request
        is carried out in them first (bot.domain.requests.finishing)."""
        if self._finisher is not None:
            return await self._finisher.release_holds(bot)
        return await self._erasure.release_holds(bot)

    async def start(self, bot: Bot) -> None:
        self._task = asyncio.create_task(self._loop(bot), name="reminders")

    async def _loop(self, bot: Bot) -> None:
        while True:
            try:
                if self.due_now():
                    await self.retention.run(bot)  # first: its counts go into the daily list
                await self.tick()
                await self.announce(bot)
                await self.warn_calendar()
                await self.release_holds(bot)
                await self._erasure.compact_if_pending()
            except Exception:
                log.exception("Scheduled check failed")
            self.first_pass.set()
            await asyncio.sleep(CHECK_SECONDS)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
