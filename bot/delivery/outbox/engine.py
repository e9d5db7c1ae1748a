"""The queue engine: the worker loop and its wake, the claim of the head of a lane, the lease
after which an interrupted item goes out again, the capped backoff, and what each outcome of a
send means (sent, retried later, failed for good, blocked, erased meanwhile). What an item's
call to Telegram is, by kind, is `bot.delivery.outbox.senders`; the guarantees are in the
package's docstring."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime, timedelta
from html import escape

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError

from bot.core.clock import Clock
from bot.core.i18n import translator
from bot.core.policy import PolicyPack
from bot.core.tasks import cancel_and_wait
from bot.delivery.outbox.answer import answer_undelivered
from bot.delivery.outbox.errors import ErasedMeanwhile, Permanent, uncopiable
from bot.delivery.outbox.pacing import GroupPace
from bot.delivery.outbox.senders import SENDERS, SendContext, attachment_of
from bot.delivery.outbox.topics import ForumTopics
from bot.domain.admin_chat import AdminChat
from bot.domain.staff_reach import DELETE_RIGHT, NOT_MEMBER, StaffReach, current, reason_of
from storage.enums import STAFF_KINDS, TO_USER_KINDS, AttachmentStatus, OutboxKind, OutboxStatus
from storage.models import OutboxItem, Request
from storage.repositories import Repositories

log = logging.getLogger(__name__)
BASE_DELAY = timedelta(seconds=5)
MAX_BACKOFF = timedelta(minutes=15)
# 5 s * 2**8 already exceeds the cap: the exponent is capped before anything is computed.
MAX_EXPONENT = 8
POLL_SECONDS = 1.0
PASS_ITEMS = 500  # items one pass claims at most (then the lease recovery runs again)
# An item still `sending` this long after its claim was interrupted (longer than any request
# to the Bot API may take); it is sent again, marked.
LEASE = timedelta(minutes=2)


COPIES = frozenset({OutboxKind.COPY_USER, OutboxKind.COPY_STAFF})  # files copied with copyMessage
# How an item ended when an erasure removed its rows while it was being sent (not a stored
# status: its row is gone).
ERASED = "erased"
# An item to staff waiting for the admin group to be reachable again (its `last_error`).
STAFF_WAIT = "staff unreachable"
# How an item's claim ended when another worker took the admin group's send slot first.
PACED = "paced"


def backoff(attempts: int) -> timedelta:
    exponent = min(max(attempts - 1, 0), MAX_EXPONENT)
    return min(BASE_DELAY * 2**exponent, MAX_BACKOFF)


class Outbox:
    """The outbox worker of one process: a loop that claims due items one at a time and hands
    each to its kind's sender. It owns its transactions (one session per claim), so it
    commits where an outcome must be durable."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        pack: PolicyPack,
        admin_chat: AdminChat,
        staff_locale: str,
        reach: StaffReach,
        pace: GroupPace,
        app_short_name: str = "",
    ) -> None:
        self._sessions = sessions
        self._reach = reach
        self._pace = pace
        self._clock = clock
        self._admin_chat = admin_chat
        self._t = translator(staff_locale)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._recovered_at: datetime | None = None
        topics = ForumTopics(admin_chat, self._t)
        self._senders = SendContext(clock, pack, admin_chat, self._t, topics, app_short_name)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, bot: Bot) -> None:
        self._task = asyncio.create_task(self._loop(bot), name="outbox")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self, bot: Bot) -> None:
        while True:
            try:
                await self.run_once(bot)
            except Exception:  # the worker must survive anything and try again
                log.exception("Outbox pass failed")
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives as
            # the wait ends (a wake() just before stop()), and stop() then waits for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await self._wake.wait()
            self._wake.clear()

    async def drain(self, bot: Bot) -> None:
        """Deliver everything that is due now (tests; shutdown)."""
        while await self.run_once(bot):
            pass

    async def recover(self) -> int:
        """Items whose worker died mid-call go out again, marked (at least once)."""
        now = self._clock.now()
        async with self._sessions() as session:
            repo = Repositories(session)
            count = await repo.outbox.recover(now - LEASE)
            await repo.commit()  # the recovery is a transaction of its own
        self._recovered_at = now
        if count:
            log.warning("%s outbox items were interrupted mid-call; sending them again", count)
        return count

    # --- one pass --------------------------------------------------------------------------

    async def run_once(self, bot: Bot) -> int:
        """Claim and deliver due items, oldest first, one at a time, until none is left (at
        most PASS_ITEMS); returns how many reached their end. A lane whose item waits (a retry)
        is not claimed from again in this pass."""
        async with self._lock:
            now = self._clock.now()
            if self._recovered_at is None or now - self._recovered_at >= LEASE:
                await self.recover()
            async with self._sessions() as session:
                if not await Repositories(session).outbox.any_due(now):
                    return 0
            done = 0
            held: set[str] = set()
            paced = False  # the admin group's send slot is taken: no more staff items this pass
            for _ in range(PASS_ITEMS):
                attempt = await self._attempt(bot, held, paced)
                if attempt is None:
                    break
                lane, outcome = attempt
                if outcome == PACED:
                    paced = True
                elif outcome is None:
                    held.add(lane)
                else:
                    done += 1
            return done

    async def _attempt(
        self, bot: Bot, held: set[str], paced: bool
    ) -> tuple[str, str | None] | None:
        """Claim the oldest due item heading its lane (not one of `held`; no item to staff when
        the admin group's send slot is not free) and deliver it; its lane and final status
        (None when it waits, PACED when the slot was taken meanwhile), or None when nothing is
        due."""
        async with self._sessions() as session:
            repo = Repositories(session)
            now = self._clock.now()
            paced = paced or not await self._pace.free(repo, now)
            skip = STAFF_KINDS if paced else ()
            item = await repo.outbox.claim(now, skip_lanes=held, skip_kinds=skip)
            if item is None:
                await session.rollback()
                return None
            if item.kind in STAFF_KINDS and await self._behind_waiting(repo, item, now):
                return item.lane, None
            if item.kind in STAFF_KINDS and not await self._pace.take(repo, now):
                await session.rollback()  # the claim is undone: another worker took the slot
                return item.lane, PACED
            return item.lane, await self._handle(bot, repo, item)

    async def _behind_waiting(self, repo: Repositories, item: OutboxItem, now: datetime) -> bool:
        """While staff are unreachable, a new item to staff does not overtake the older ones
        waiting at their backoff (the group may come back without a `my_chat_member` update):
        it waits with them, and the oldest is tried first. True when it was put back so."""
        state = await current(repo)
        if state is None or not state.holds(item.kind):
            return False
        held = [kind for kind in STAFF_KINDS if state.holds(kind)]
        when = await repo.outbox.waiting_before(held, item.id, now)
        if when is None:
            return False
        item.status, item.next_attempt_at = OutboxStatus.PENDING, when
        item.attempts -= 1  # not tried
        item.last_error = STAFF_WAIT
        await repo.commit()
        return True

    async def _handle(self, bot: Bot, repo: Repositories, item: OutboxItem) -> str | None:
        """Deliver a claimed item; its final status, or None when it waits."""
        item_id, kind = item.id, item.kind  # for the log once a vanished row cannot be read
        request = await repo.requests.get(item.request_id) if item.request_id else None
        await repo.commit()  # `sending` is durable before Telegram is called
        try:
            await self._deliver(bot, repo, item, request)
        except ErasedMeanwhile as gone:
            await repo.session.rollback()
            await self._erased_meanwhile(item_id, kind, gone)
            return ERASED
        except TelegramMigrateToChat as migrated:
            await self._admin_chat.migrate(repo, migrated.migrate_to_chat_id)
            self._retry(item, "group migrated", timedelta(0))
        except TelegramRetryAfter as error:
            self._retry(item, "flood limit", timedelta(seconds=error.retry_after))
            if item.kind in STAFF_KINDS:  # no other item to staff before Telegram allows it
                await self._pace.hold(repo, item.next_attempt_at)
        except (TelegramNetworkError, TelegramServerError) as error:
            self._retry(item, error.message)
        except TelegramForbiddenError as error:
            if item.kind in TO_USER_KINDS:
                item.status, item.last_error = OutboxStatus.BLOCKED, "user blocked the bot"
                await self._user_unreachable(repo, item, request)
            elif item.kind in STAFF_KINDS:
                await self._staff_lost(repo, item, reason_of(error) or NOT_MEMBER)
            else:
                await self._failed(repo, item, request, error.message)
        except TelegramBadRequest as error:
            if item.kind in COPIES and uncopiable(error):
                item.status, item.last_error = OutboxStatus.FAILED, error.message[:200]
                await self._copy_failed(repo, item, request)
            elif item.kind in STAFF_KINDS and (reason := reason_of(error)) is not None:
                await self._staff_lost(repo, item, reason)  # waits until the group is back
            else:
                await self._failed(repo, item, request, error.message)
        except Permanent as error:
            await self._failed(repo, item, request, str(error))
        except TelegramAPIError as error:  # 401, 404 of the API itself, unknown: transient
            self._retry(item, error.message)
        except Exception as error:  # a bug or a broken answer: keep the item, try later
            log.exception("Outbox item %s (%s) failed", item_id, kind)
            self._retry(item, type(error).__name__)
        else:
            item.status = OutboxStatus.SENT
            item.sent_at = self._clock.now()
            if item.kind in STAFF_KINDS:  # the group answers: if it was lost, it is back
                await self._reach.found(repo, item.kind)
        try:
            await repo.commit()  # the outcome is stored (with what it queued: notices, edits)
        except (StaleDataError, ObjectDeletedError):  # the item's request was erased meanwhile
            await repo.session.rollback()
            await self._erased_meanwhile(item_id, kind, ErasedMeanwhile())
            return ERASED
        if item.status == OutboxStatus.PENDING:
            # While staff are unreachable that is logged once (StaffReach), not per item.
            level = logging.DEBUG if item.last_error == STAFF_WAIT else logging.INFO
            why = item.last_error
            log.log(level, "Outbox item %s (%s) retried later: %s", item.id, item.kind, why)
            return None
        if item.confirm_message_id is not None:
            error = None if item.status == OutboxStatus.SENT else item.last_error or item.status
            await self._confirm(bot, item, request, error)
        return item.status

    async def _erased_meanwhile(self, item_id: int, kind: str, gone: ErasedMeanwhile) -> None:
        """An erasure deleted the item's request while it was being sent. A message it left
        in the admin group is deleted like the erasure's own relayed ones (UNRELAY)."""
        log.info("Outbox item %s (%s) ended: its person was erased meanwhile", item_id, kind)
        if gone.chat_id is None or gone.message_id is None:
            return
        blank = json.dumps({"erased": self._t("outbox.erased_meanwhile"), "key": ""})
        async with self._sessions() as session:
            repo = Repositories(session)
            await repo.outbox.add(
                kind=OutboxKind.UNRELAY,
                chat_id=gone.chat_id,
                message_id=gone.message_id,
                text=blank,
                now=self._clock.now(),
            )
            await repo.commit()  # the deletion is queued for good (its commit wakes the outbox)

    async def _staff_lost(self, repo: Repositories, item: OutboxItem, reason: str) -> None:
        """The admin group cannot be reached: the item waits (capped backoff), and every other
        item to staff waits as long (one try then decides for all, in their order); the
        desk's state says so (StaffReach: logged once, owners told once). Never failed."""
        self._retry(item, STAFF_WAIT)
        await self._pace.release(repo)  # nothing was posted
        if reason != DELETE_RIGHT:  # only deletions wait for the right to delete
            await repo.outbox.postpone(STAFF_KINDS, item.next_attempt_at)
        await self._reach.lost(repo, reason)

    def _retry(self, item: OutboxItem, why: str, delay: timedelta | None = None) -> None:
        item.status = OutboxStatus.PENDING
        item.last_error = why[:200]
        item.next_attempt_at = self._clock.now() + (
            backoff(item.attempts) if delay is None else delay
        )

    async def _failed(
        self, repo: Repositories, item: OutboxItem, request: Request | None, error: str
    ) -> None:
        """For good: logged with the item ID, told to staff, shown on the card."""
        item.status, item.last_error = OutboxStatus.FAILED, error[:200]
        log.warning("Outbox item %s (%s) failed for good: %s", item.id, item.kind, error)
        now = self._clock.now()
        if item.kind == OutboxKind.UNRELAY:
            key = str(json.loads(item.text or "{}").get("key", ""))
            text = self._t("attach.erase_leftover", count=1, ids=str(item.message_id), key=key)
            await repo.outbox.add(kind=OutboxKind.NOTICE, text=text, now=now)
        elif item.kind not in (OutboxKind.NOTICE, OutboxKind.TO_OWNER):  # owners: logged only
            if request is not None:
                text = self._t(
                    "outbox.failed_request", item=item.id, id=request.id, error=escape(error)
                )
            else:
                text = self._t("outbox.failed", item=item.id, error=escape(error))
            await repo.outbox.add(kind=OutboxKind.NOTICE, text=text, now=now)
        if item.kind in TO_USER_KINDS and request is not None:
            await repo.requests.count_undelivered(request.id)
            await repo.outbox.add(kind=OutboxKind.CARD_EDIT, request_id=request.id, now=now)
        if item.kind == OutboxKind.SYSTEMS_ANSWER and request is not None:
            await answer_undelivered(repo, self._senders.pack, request.id, now)

    async def _user_unreachable(
        self, repo: Repositories, item: OutboxItem, request: Request | None
    ) -> None:
        if item.user_id is not None:
            await repo.users.set_blocked(item.user_id, True)
        if item.kind == OutboxKind.SYSTEMS_ANSWER and request is not None:
            await answer_undelivered(repo, self._senders.pack, request.id, self._clock.now())
        if request is not None and not request.user_unreachable:
            request.user_unreachable = True
            await repo.outbox.add(
                kind=OutboxKind.CARD_EDIT, request_id=request.id, now=self._clock.now()
            )

    async def _confirm(
        self, bot: Bot, item: OutboxItem, request: Request | None, error: str | None
    ) -> None:
        """Edit staff's "queued" notice once the user has the message (or it failed)."""
        number = request.id if request is not None else 0
        if error is None:
            text = self._t("card.relayed", id=number)
        else:
            text = self._t("card.relay_failed", id=number, error=escape(error))
        with contextlib.suppress(TelegramAPIError):
            await bot.edit_message_text(
                text, chat_id=self._admin_chat.id, message_id=item.confirm_message_id
            )

    async def _copy_failed(
        self, repo: Repositories, item: OutboxItem, request: Request | None
    ) -> None:
        """A file Telegram will not copy: the sender is told, in their own language."""
        attachment = await attachment_of(repo, item)
        if attachment is not None:
            attachment.status = AttachmentStatus.FAILED
        if request is None:
            return
        now = self._clock.now()
        if item.kind == OutboxKind.COPY_USER:
            text = self._t("attach.failed_staff", id=request.id)
            await repo.outbox.add(
                kind=OutboxKind.TO_ADMIN, request_id=request.id, text=text, now=now
            )
            return
        user = await repo.users.get(request.user_id)
        if user is not None:
            text = translator(user.language)("attach.failed_user", id=request.id)
            await repo.outbox.add(
                kind=OutboxKind.TO_USER, user_id=user.id, request_id=request.id, text=text, now=now
            )

    # --- delivery by kind ------------------------------------------------------------------

    async def _deliver(
        self, bot: Bot, repo: Repositories, item: OutboxItem, request: Request | None
    ) -> None:
        """Make the item's call(s) to Telegram: its kind's sender (senders.SENDERS)."""
        try:
            sender = SENDERS[OutboxKind(item.kind)]
        except ValueError:
            raise Permanent(f"no sender for the kind {item.kind!r}") from None
        await sender(self._senders, bot, repo, item, request)
