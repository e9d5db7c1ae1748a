"""Delivering campaigns from the database: marketing (only to users who consent at the moment
each message goes out) and policy-change notices (to users not yet told).

Each delivery is written as `sending` before the call to Telegram and as its outcome after,
so a restart continues where it stopped and never sends anyone a second copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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

from bot import keyboards
from bot.admin_chat import AdminChat
from bot.breaches import BREACH
from bot.clock import Clock
from bot.consents import Consents
from bot.i18n import translator
from bot.policy import PolicyPack
from bot.render import (
    breach_notice_text,
    campaign_text,
    policy_next_text,
    policy_update_text,
)
from storage.dialect import Space, exclusive
from storage.models import Campaign, User
from storage.repositories import Repositories

log = logging.getLogger(__name__)

MARKETING = "marketing"
POLICY = "policy"
POLICY_NEXT = "policy_next"  # the next version, announced before its date (seed 002, 8.3)
MAX_ATTEMPTS = 5
PROGRESS_EVERY_SECONDS = 2.0
# How often an instance looks for campaigns whose instance stopped mid-way.
TAKE_OVER_SECONDS = 10.0

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
            sent=counts.get("sent", 0),
            skipped=counts.get("skipped", 0),
            failed=counts.get("failed", 0) + counts.get("blocked", 0),
            uncertain=counts.get("uncertain", 0),
            left=counts.get("pending", 0) + counts.get("sending", 0),
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
    ) -> None:
        self._sessions = sessions
        self._pack = pack
        self._clock = clock
        self._admin_chat = admin_chat
        self._t = translator(staff_locale)
        self._interval = 1.0 / rate
        self._sleep = sleep
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
        async with self._sessions() as session:
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
        tasks = [*self._tasks.values(), *([self._watch] if self._watch else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._watch = None

    # --- delivery --------------------------------------------------------------------------

    async def _run(self, bot: Bot, campaign_id: int) -> None:
        """Deliver the campaign if no other instance does; a crash leaves it to the next one."""
        async with exclusive(self._engine, Space.CAMPAIGN, str(campaign_id)) as mine:
            if not mine:
                return
            async with self._sessions() as session:
                repo = Repositories(session)
                interrupted = await repo.campaigns.mark_interrupted(campaign_id)
                await repo.commit()
            if interrupted:
                log.warning(
                    "Campaign %s: %s deliveries were interrupted mid-call; they are not repeated",
                    campaign_id,
                    interrupted,
                )
            log.info("Sending campaign %s", campaign_id)
            await self._send_all(bot, campaign_id)

    async def _send_all(self, bot: Bot, campaign_id: int) -> None:
        loop = asyncio.get_running_loop()
        last_progress = loop.time()
        while await self._deliver_next(bot, campaign_id):
            if loop.time() - last_progress >= PROGRESS_EVERY_SECONDS:
                last_progress = loop.time()
                await self._progress(bot, campaign_id, final=False)
            await self._sleep(self._interval)
        async with self._sessions() as session:
            repo = Repositories(session)
            await repo.campaigns.finish(campaign_id, self._clock.now())
            await repo.commit()
        await self._progress(bot, campaign_id, final=True)

    async def _deliver_next(self, bot: Bot, campaign_id: int) -> bool:
        """Claim and deliver one pending message; False when none is left."""
        async with self._sessions() as session:
            repo = Repositories(session)
            # Claimed first (`pending` -> `sending`, one conditional UPDATE): no other worker or
            # process can take it, and it is durable before Telegram is called, so a crash
            # never leads to a second copy (at most once).
            delivery = await repo.campaigns.claim_next(campaign_id)
            if delivery is None:
                await repo.commit()
                return False
            campaign = await repo.campaigns.get(campaign_id)
            user = await repo.users.get(delivery.user_id)
            eligible = (
                campaign is not None
                and user is not None
                and await self._eligible(repo, campaign, user)
            )
            if not eligible:
                delivery.status = "skipped"
                await repo.commit()
                return True
            assert campaign is not None and user is not None
            text, markup = await self._render(repo, campaign, user)
            await repo.commit()

            outcome = "sent"
            message_id: int | None = None
            try:
                message = await bot.send_message(user.id, text, reply_markup=markup)
                message_id = message.message_id
            except TelegramRetryAfter as error:
                log.info("Campaign %s: flood limit, waiting %ss", campaign_id, error.retry_after)
                await self._sleep(error.retry_after)
                outcome = "pending"
            except TelegramForbiddenError:
                outcome = "blocked"
                user.blocked_bot = True
            except TelegramBadRequest as error:
                log.warning("Campaign %s: delivery %s: %s", campaign_id, delivery.id, error.message)
                outcome = "failed"
            except (TelegramNetworkError, TelegramServerError) as error:
                retry = delivery.attempts < MAX_ATTEMPTS
                outcome = "pending" if retry else "failed"
                log.warning("Campaign %s: %s (attempt %s)", campaign_id, error, delivery.attempts)
                await self._sleep(min(2.0**delivery.attempts, 60.0))
            delivery.status = outcome
            if outcome == "sent":
                delivery.message_id = message_id
                delivery.sent_at = self._clock.now()
                if campaign.kind == POLICY:
                    user.notice_version = self._pack.policy.version
                    user.notice_shown_at = self._clock.now()
            await repo.commit()
            return True

    async def _eligible(self, repo: Repositories, campaign: Campaign, user: User) -> bool:
        now = self._clock.now()
        if campaign.kind == BREACH:
            return True  # restricted users and legal holds are told too (GDPR art. 34)
        if user.blocked_bot or (user.restricted_until is not None and user.restricted_until > now):
            return False
        if await repo.requests.hold_until(user.id, now) is not None:
            return False  # a legal hold: nothing but storage
        if campaign.kind == POLICY:
            return user.notice_version != self._pack.policy.version
        if campaign.kind == POLICY_NEXT:
            return True
        marketing = self._pack.marketing
        consents = Consents(repo, self._clock, self._pack)
        return marketing is not None and await consents.effective(user.id, marketing.purpose)

    async def _render(
        self, repo: Repositories, campaign: Campaign, user: User
    ) -> tuple[str, InlineKeyboardMarkup | None]:
        t = translator(user.language)
        if campaign.kind == BREACH:
            breach = await repo.breaches.by_campaign(campaign.id)
            assert breach is not None
            return breach_notice_text(breach, self._pack, t), None
        if campaign.kind == POLICY_NEXT:
            return policy_next_text(self._pack, t), keyboards.next_policy(t, self._pack)
        if campaign.kind == POLICY:
            views = await Consents(repo, self._clock, self._pack).views(user.id)
            reconfirm = any(v.needs_reconfirm for v in views)
            text = policy_update_text(self._pack, t, reconfirm=reconfirm)
            return text, keyboards.notice(t, self._pack)
        assert self._pack.marketing is not None
        reason = self._pack.marketing.reason.get(t.locale)
        return campaign_text(reason, campaign.body), keyboards.unsubscribe(t, campaign.id)

    async def _progress(self, bot: Bot, campaign_id: int, *, final: bool) -> None:
        async with self._sessions() as session:
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
