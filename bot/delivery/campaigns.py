"""Delivering campaigns from the database: marketing (only to users who consent at the moment
each message goes out) and policy-change notices (to users not yet told).

Each delivery is written as `sending` before the call to Telegram and as its outcome after,
so a restart continues where it stopped and never sends anyone a second copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardMarkup
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core.clock import Clock
from bot.core.i18n import translator
from bot.core.policy import PolicyPack
from bot.core.tasks import cancel_and_wait
from bot.domain.admin_chat import AdminChat
from bot.domain.consents import Consents
from bot.telegram import keyboards
from bot.telegram.texts.breaches import breach_notice_text
from bot.telegram.texts.campaigns import campaign_text
from bot.telegram.texts.notice import policy_next_text, policy_update_text
from storage.dialect import Space, exclusive
from storage.enums import CampaignKind, DeliveryStatus
from storage.models import Breach, Campaign
from storage.repositories import Claimed, Eligibility, Repositories

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
PROGRESS_EVERY_SECONDS = 2.0
# How often an instance looks for campaigns whose instance stopped mid-way.
TAKE_OVER_SECONDS = 10.0
IN_FLIGHT = 32  # sends under way at once (Telegram answers take tens of milliseconds)
# Seconds of sends claimed at once (their recipients checked at the claim): at 25/s a claim
# of 5 serves 0.2 s of sending, so its own time is spread over five sends. Uncapped: IN_FLIGHT.
CLAIM_AHEAD = 0.2
CATCH_UP = 0.25  # a send this late still keeps later deadlines (no drift); later: start anew
STOP_GRACE = 2.0  # seconds a stopping runner lets sends under way finish

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Tally:
    sent: int
    skipped: int
    failed: int
    uncertain: int
    left: int

    @classmethod
    def of(cls, counts: dict[str, int]) -> Tally:
        return cls(
            sent=counts.get(DeliveryStatus.SENT, 0),
            skipped=counts.get(DeliveryStatus.SKIPPED, 0),
            failed=counts.get(DeliveryStatus.FAILED, 0) + counts.get(DeliveryStatus.BLOCKED, 0),
            uncertain=counts.get(DeliveryStatus.UNCERTAIN, 0),
            left=counts.get(DeliveryStatus.PENDING, 0) + counts.get(DeliveryStatus.SENDING, 0),
        )


class CampaignRunner:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        pack: PolicyPack,
        clock: Clock,
        admin_chat: AdminChat,
        staff_locale: str,
        rate: float,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.sessions = sessions
        self.pack = pack
        self.clock = clock
        self._admin_chat = admin_chat
        self._t = translator(staff_locale)
        self.rate = rate
        self.sleep = sleep
        self.monotonic = monotonic or time.monotonic
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._watch: asyncio.Task[None] | None = None
        self._engine: AsyncEngine = sessions.kw["bind"]

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, bot: Bot, campaign_id: int) -> None:
        task = self._tasks.get(campaign_id)
        if task is None or task.done():
            self._tasks[campaign_id] = asyncio.create_task(
                self._run(bot, campaign_id), name=f"campaign-{campaign_id}"
            )

    async def resume(self, bot: Bot) -> None:
        """At start: continue unfinished campaigns, and keep taking over those whose instance
        stopped (only one instance runs a campaign at a time, see `_run`)."""
        await self.take_over(bot)
        if self._watch is None:
            self._watch = asyncio.create_task(self._watch_loop(bot), name="campaign-watch")

    async def take_over(self, bot: Bot) -> None:
        async with self.sessions() as session:
            unfinished = await Repositories(session).campaigns.unfinished()
        for campaign_id in unfinished:
            self.start(bot, campaign_id)

    async def _watch_loop(self, bot: Bot) -> None:
        while True:
            await asyncio.sleep(TAKE_OVER_SECONDS)
            try:
                await self.take_over(bot)
            except Exception:  # the watcher must survive anything and try again
                log.exception("Campaign take-over check failed")

    async def drain(self) -> None:
        """Wait until every running campaign has finished (tests, shutdown)."""
        while tasks := [t for t in self._tasks.values() if not t.done()]:
            await asyncio.gather(*tasks)

    async def stop(self) -> None:
        tasks = [*self._tasks.values(), self._watch]
        self._tasks.clear()
        self._watch = None
        await cancel_and_wait(*tasks)

    # --- delivery --------------------------------------------------------------------------

    async def _run(self, bot: Bot, campaign_id: int) -> None:
        """Deliver the campaign if no other instance does; a crash leaves it to the next one."""
        async with exclusive(self._engine, Space.CAMPAIGN, str(campaign_id)) as mine:
            if not mine:
                return
            async with self.sessions() as session:
                repo = Repositories(session)
                interrupted = await repo.campaigns.mark_interrupted(campaign_id)
                await repo.commit()  # settled before any new claim: they are never sent again
            if interrupted:
                log.warning(
                    "Campaign %s: %s deliveries were interrupted mid-call; they are not repeated",
                    campaign_id,
                    interrupted,
                )
            log.info("Sending campaign %s", campaign_id)
            await self._send_all(bot, campaign_id)

    async def _send_all(self, bot: Bot, campaign_id: int) -> None:
        async with self.sessions() as session:
            repo = Repositories(session)
            campaign = await repo.campaigns.get(campaign_id)
            breach = (
                await repo.breaches.by_campaign(campaign_id)
                if campaign is not None and campaign.kind == CampaignKind.BREACH
                else None
            )
        if campaign is None:
            return
        run = _Run(self, bot, campaign, breach)
        try:
            await run.deliver()
        except asyncio.CancelledError:
            await run.settle(cancel=True)  # outcomes of finished sends are kept
            raise
        await run.settle(cancel=False)
        async with self.sessions() as session:
            repo = Repositories(session)
            await repo.campaigns.finish(campaign_id, self.clock.now())
            await repo.commit()  # done for good before the final report is sent
        await self._progress(bot, campaign_id, final=True)

    def eligibility(self, campaign: Campaign) -> Eligibility:
        """Who may receive the campaign's message at the moment it goes out."""
        if campaign.kind == CampaignKind.BREACH:
            return Eligibility(screened=False)  # restricted and held users are told too (art. 34)
        if campaign.kind == CampaignKind.POLICY:
            return Eligibility(notice_version=self.pack.policy.version)
        if campaign.kind == CampaignKind.POLICY_NEXT:
            return Eligibility()
        marketing = self.pack.marketing
        purpose = self.pack.consent_purpose(marketing.purpose) if marketing else None
        if purpose is None:
            return Eligibility(purpose="", versions=frozenset())  # nobody
        return Eligibility(
            purpose=purpose.id, versions=frozenset(self.pack.valid_consent_versions(purpose))
        )

    def render(
        self, campaign: Campaign, breach: Breach | None, language: str, reconfirm: bool
    ) -> tuple[str, InlineKeyboardMarkup | None]:
        t = translator(language)
        if campaign.kind == CampaignKind.BREACH:
            assert breach is not None
            return breach_notice_text(breach, self.pack, t), None
        if campaign.kind == CampaignKind.POLICY_NEXT:
            return policy_next_text(self.pack, t), keyboards.next_policy(t, self.pack)
        if campaign.kind == CampaignKind.POLICY:
            text = policy_update_text(self.pack, t, reconfirm=reconfirm)
            return text, keyboards.notice(t, self.pack)
        assert self.pack.marketing is not None
        reason = self.pack.marketing.reason.get(t.locale)
        return campaign_text(reason, campaign.body), keyboards.unsubscribe(t, campaign.id)

    async def _progress(self, bot: Bot, campaign_id: int, *, final: bool) -> None:
        async with self.sessions() as session:
            repo = Repositories(session)
            campaign = await repo.campaigns.get(campaign_id)
            tally = Tally.of(await repo.campaigns.counts(campaign_id))
        if campaign is None:
            return
        t = self._t
        if final:
            text = t(
                "staff.campaign_report",
                id=campaign_id,
                sent=tally.sent,
                skipped=tally.skipped,
                failed=tally.failed,
            )
            if tally.uncertain:
                text += t("staff.campaign_uncertain", uncertain=tally.uncertain)
        else:
            text = t("staff.campaign_progress", id=campaign_id, **tally.__dict__)
        if campaign.progress_message_id is not None:
            try:
                await bot.edit_message_text(
                    text, chat_id=self._admin_chat.id, message_id=campaign.progress_message_id
                )
                return
            except TelegramAPIError as error:
                log.info("Campaign %s: progress not edited: %s", campaign_id, error.message)
        if final:
            with contextlib.suppress(TelegramAPIError):
                await bot.send_message(self._admin_chat.id, text)


@dataclass
class SendOutcome:
    """What became of one delivery's send (written in the transaction of the next claim)."""

    delivery_id: int
    user_id: int
    status: DeliveryStatus
    message_id: int | None = None
    sent_at: datetime | None = None


class _Run:
    """One campaign's delivery: claims pending deliveries in batches (each recipient checked at
    the claim, just before the send), sends up to IN_FLIGHT at once, paced to deadlines, and
    writes outcomes in the transaction of the next claim."""

    def __init__(
        self, runner: CampaignRunner, bot: Bot, campaign: Campaign, breach: Breach | None
    ) -> None:
        self._runner = runner
        self._bot = bot
        self._campaign = campaign
        self._breach = breach
        self._rules = runner.eligibility(campaign)
        self._pacer = Pacer(runner.rate, runner.monotonic, runner.sleep)
        self._slots = asyncio.Semaphore(IN_FLIGHT)
        self._sends: set[asyncio.Task[None]] = set()
        self._done: list[SendOutcome] = []
        self._unstarted: list[Claimed] = []
        self._texts: dict[tuple[str, bool], tuple[str, InlineKeyboardMarkup | None]] = {}
        # How many to claim at once: the sends due within CLAIM_AHEAD seconds.
        self._batch = max(1, int(min(IN_FLIGHT, runner.rate * CLAIM_AHEAD)))

    async def deliver(self) -> None:
        loop = asyncio.get_running_loop()
        last_progress = loop.time()
        first = True
        while True:
            async with self._slots:  # a send can start: wait for its moment, then claim
                await self._pacer.wait()
            claimed, seen = await self._claim()
            for delivery, reconfirm in claimed:  # rendered before the schedule runs: the
                self._text(delivery.language, reconfirm)  # first one costs ~0.2 s (catalogs)
            if first:
                first = False
                self._pacer.restart()  # the schedule starts at the first send, not before
            if not seen:
                if not self._sends:
                    return  # nothing pending, nothing in flight (retries were re-queued)
                await asyncio.wait(set(self._sends))
                continue
            for index, (delivery, reconfirm) in enumerate(claimed):
                await self._slots.acquire()
                if index:
                    await self._pacer.wait()
                self._unstarted.remove(delivery)
                task = asyncio.create_task(self._send(delivery, reconfirm))
                self._sends.add(task)
                task.add_done_callback(self._sends.discard)
            if loop.time() - last_progress >= PROGRESS_EVERY_SECONDS:
                last_progress = loop.time()
                await self._runner._progress(self._bot, self._campaign.id, final=False)

    async def _claim(self) -> tuple[list[tuple[Claimed, bool]], int]:
        """Write the outcomes so far and claim the next batch, in one transaction."""
        runner = self._runner
        async with runner.sessions() as session:
            repo = Repositories(session)
            written = await self._write(repo)
            claim = await repo.campaigns.claim(
                self._campaign.id, self._batch, self._rules, now=runner.clock.now()
            )
            reconfirm: set[int] = set()
            if claim.claimed and self._campaign.kind == CampaignKind.POLICY:
                consents = Consents(repo, runner.clock, runner.pack)
                for item in claim.claimed:
                    if any(v.needs_reconfirm for v in await consents.views(item.user_id)):
                        reconfirm.add(item.user_id)
            await repo.commit()  # `sending` is stored before Telegram is called
            self._unstarted = list(claim.claimed)  # set before anything else can be interrupted
            del self._done[:written]  # kept until committed: a stop mid-write loses nothing
        return [(item, item.user_id in reconfirm) for item in claim.claimed], claim.seen

    async def _write(self, repo: Repositories) -> int:
        """Write the outcomes known so far (not committed here); how many."""
        done = list(self._done)
        if not done:
            return 0
        await repo.campaigns.record_outcomes(
            [(o.delivery_id, o.status, o.message_id, o.sent_at) for o in done],
            blocked=[o.user_id for o in done if o.status == DeliveryStatus.BLOCKED],
            told=[o.user_id for o in done if o.status == DeliveryStatus.SENT]
            if self._campaign.kind == CampaignKind.POLICY
            else [],
            notice_version=self._runner.pack.policy.version,
            now=self._runner.clock.now(),
        )
        return len(done)

    def _text(self, language: str, reconfirm: bool) -> tuple[str, InlineKeyboardMarkup | None]:
        key = (language, reconfirm)
        if key not in self._texts:
            self._texts[key] = self._runner.render(self._campaign, self._breach, *key)
        return self._texts[key]

    async def _send(self, delivery: Claimed, reconfirm: bool) -> None:
        try:
            text, markup = self._text(delivery.language, reconfirm)
            outcome = await self._call(delivery, text, markup)
            self._done.append(outcome)
        finally:
            self._slots.release()

    async def _call(
        self, delivery: Claimed, text: str, markup: InlineKeyboardMarkup | None
    ) -> SendOutcome:
        campaign_id, user_id = self._campaign.id, delivery.user_id
        try:
            message = await self._bot.send_message(user_id, text, reply_markup=markup)
        except TelegramRetryAfter as error:
            log.info("Campaign %s: flood limit, waiting %ss", campaign_id, error.retry_after)
            self._pacer.pause(error.retry_after)
            return SendOutcome(delivery.delivery_id, user_id, DeliveryStatus.PENDING)
        except TelegramForbiddenError:
            return SendOutcome(delivery.delivery_id, user_id, DeliveryStatus.BLOCKED)
        except TelegramBadRequest as error:
            log.warning("Campaign %s: user %s: %s", campaign_id, user_id, error.message)
            return SendOutcome(delivery.delivery_id, user_id, DeliveryStatus.FAILED)
        except (TelegramNetworkError, TelegramServerError) as error:
            retry = delivery.attempts < MAX_ATTEMPTS
            log.warning("Campaign %s: %s (attempt %s)", campaign_id, error, delivery.attempts)
            self._pacer.pause(min(2.0**delivery.attempts, 60.0))
            return SendOutcome(
                delivery.delivery_id,
                user_id,
                DeliveryStatus.PENDING if retry else DeliveryStatus.FAILED,
            )
        now = self._runner.clock.now()
        return SendOutcome(
            delivery.delivery_id, user_id, DeliveryStatus.SENT, message.message_id, now
        )

    async def settle(self, *, cancel: bool) -> None:
        """Finish the sends in flight (when stopping, those still running after STOP_GRACE
        are cancelled) and write what is known. A cancelled send stays `sending`: uncertain
        after a restart, never repeated."""
        if cancel:
            # Claimed but never handed to Telegram: back to the queue, not uncertain.
            self._done.extend(
                SendOutcome(d.delivery_id, d.user_id, DeliveryStatus.PENDING)
                for d in self._unstarted
            )
            self._unstarted = []
        if cancel and self._sends:
            _, late = await asyncio.wait(set(self._sends), timeout=STOP_GRACE)
            for task in late:
                task.cancel()
        if self._sends:
            await asyncio.gather(*self._sends, return_exceptions=True)
        async with self._runner.sessions() as session:
            repo = Repositories(session)
            written = await self._write(repo)
            await repo.commit()  # the outcomes are stored before they are forgotten here
        del self._done[:written]


class Pacer:
    """Sends at `rate` per second by deadlines: the n-th send is due at start + n / rate, so
    the time spent sending is not added to the interval (sleeping a full interval after each
    send delivered 19.9 a second at 25). A send late by up to CATCH_UP keeps the later
    deadlines (the next sends catch up); after a longer stall the schedule starts anew rather
    than bursting. A pause (429 retry_after) moves every later deadline."""

    def __init__(self, rate: float, now: Callable[[], float], sleep: Sleep) -> None:
        self._interval = 0.0 if math.isinf(rate) else 1.0 / rate
        self._slack = max(self._interval, CATCH_UP)
        self._now = now
        self._sleep = sleep
        self._next: float | None = None

    def restart(self) -> None:
        """A send goes now and the later deadlines count from it."""
        self._next = self._now() + self._interval

    def pause(self, seconds: float) -> None:
        self._next = max(self._next or 0.0, self._now() + seconds)

    async def wait(self) -> None:
        now = self._now()
        if self._next is None or self._next < now - self._slack:
            self._next = now
        if self._next > now:
            await self._sleep(self._next - now)
        self._next += self._interval
