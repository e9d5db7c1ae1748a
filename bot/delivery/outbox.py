"""Delivers what the database says must be delivered: request cards to the admin group (into a
topic per request type when the group is a forum), card edits, messages to users and staff, the
daily list, redactions after an erasure.

Guarantees (README, "Delivery guarantees"):
- An item is claimed with one conditional UPDATE (PostgreSQL reads the candidate with FOR UPDATE
  SKIP LOCKED), so any number of workers and processes on one database never send it twice at
  the same time, nor wait for each other's claims.
- Lanes: items to one user, about one card, or to one other chat keep their order (only the
  head of a lane is ever claimed, by any instance); a waiting or failed item never holds
  another lane.
- Errors are decided: network trouble, 5xx and 429 are retried with a capped backoff; an error
  Telegram would repeat (a 400, a 403 in the admin group) ends the item as `failed` at once, is
  logged with the item ID and shown to staff.
- At least once: an item a crash left `sending` is sent again after the lease, marked as a
  possible repeat; a card sent again is the card from then on (its new message ID is recorded).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime, timedelta
from enum import StrEnum
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
from aiogram.types import InlineKeyboardMarkup, ReplyParameters
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError

from bot.core.clock import Clock
from bot.core.i18n import Translator, translator
from bot.core.policy import PolicyPack
from bot.core.tasks import cancel_and_wait
from bot.domain.admin_chat import AdminChat
from bot.domain.attachments import fit_caption, megabytes
from bot.domain.requests.desk import OPEN
from bot.domain.requests.filing import extension_refusal
from bot.telegram import keyboards
from bot.telegram.render import card_text, due_page
from storage.enums import TO_USER_KINDS
from storage.models import OutboxItem, Request, RequestAttachment
from storage.repositories import Repositories

log = logging.getLogger(__name__)
BASE_DELAY = timedelta(seconds=5)
MAX_BACKOFF = timedelta(minutes=15)
# Telegram's answers when a message cannot be copied at all (deleted, protected, invalid).
UNCOPIABLE = ("message to copy not found", "can't be copied", "message_id_invalid")
# 5 s * 2**8 already exceeds the cap: the exponent is capped before anything is computed.
MAX_EXPONENT = 8
POLL_SECONDS = 1.0
PASS_ITEMS = 500  # items one pass claims at most (then the lease recovery runs again)
# An item still `sending` this long after its claim was interrupted (longer than any request
# to the Bot API may take); it is sent again, marked.
LEASE = timedelta(minutes=2)


# Requests whose outcome each recipient of a disclosure must be told of (GDPR art. 19).
TELL_RECIPIENTS = frozenset({"erasure", "rectification", "restriction"})


class Kind(StrEnum):
    CARD = "card"  # a request card (admin group)
    CARD_EDIT = "card_edit"  # the card re-rendered from the request's current state
    TO_USER = "to_user"  # a message about a request to its user
    TO_STAFF = "to_staff"  # a user's message relayed under the card
    TO_ADMIN = "to_admin"  # a text to the admin group
    NOTICE = "notice"  # the bot's own notice to staff (a failure is never re-announced)
    DUE_LIST = "due_list"  # the daily list, rendered at delivery with its pages
    REDACT = "redact"  # after an erasure: a card edited to the redacted text
    UNRELAY = "unrelay"  # after an erasure: a message relayed into the group deleted (or blanked)
    COPY_USER = "copy_user"  # staff's file copied to the user
    COPY_STAFF = "copy_staff"  # the user's file copied under the card


TO_USER = frozenset(map(Kind, TO_USER_KINDS))  # items delivered into a user's chat
COPIES = frozenset({Kind.COPY_USER, Kind.COPY_STAFF})  # files copied with copyMessage


STAFF_KINDS = frozenset(
    {
        Kind.CARD,
        Kind.CARD_EDIT,
        Kind.TO_STAFF,
        Kind.COPY_STAFF,
        Kind.TO_ADMIN,
        Kind.NOTICE,
        Kind.DUE_LIST,
        Kind.REDACT,
        Kind.UNRELAY,
    }
)
MARKED = frozenset({Kind.CARD, Kind.TO_USER, Kind.TO_STAFF, Kind.TO_ADMIN})


class Permanent(Exception):
    """Telegram would answer the same again: the item fails now."""


class ErasedMeanwhile(Exception):
    """The person was erased while their item was on its way: its rows are gone. What was
    just posted into the admin group (`chat_id`, `message_id`; None when nothing was) must go
    too, as the erasure's own redactions could not know of it."""

    def __init__(self, chat_id: int | None = None, message_id: int | None = None) -> None:
        super().__init__("erased while on its way")
        self.chat_id, self.message_id = chat_id, message_id


def backoff(attempts: int) -> timedelta:
    exponent = min(max(attempts - 1, 0), MAX_EXPONENT)
    return min(BASE_DELAY * 2**exponent, MAX_BACKOFF)


class Outbox:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        pack: PolicyPack,
        admin_chat: AdminChat,
        staff_locale: str,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._pack = pack
        self._admin_chat = admin_chat
        self._t = translator(staff_locale)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._forum: bool | None = None
        self._recovered_at: datetime | None = None

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
            await repo.commit()
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
            for _ in range(PASS_ITEMS):
                attempt = await self._attempt(bot, held)
                if attempt is None:
                    break
                lane, outcome = attempt
                if outcome is None:
                    held.add(lane)
                else:
                    done += 1
            return done

    async def _attempt(self, bot: Bot, held: set[str]) -> tuple[str, str | None] | None:
        """Claim the oldest due item heading its lane (not one of `held`) and deliver it; its
        lane and final status (None when it waits), or None when nothing is due."""
        async with self._sessions() as session:
            repo = Repositories(session)
            item = await repo.outbox.claim(self._clock.now(), skip_lanes=held)
            if item is None:
                await session.rollback()
                return None
            return item.lane, await self._handle(bot, repo, item)

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
            return "erased"
        except TelegramMigrateToChat as migrated:
            await self._admin_chat.migrate(repo, migrated.migrate_to_chat_id)
            self._retry(item, "group migrated", timedelta(0))
        except TelegramRetryAfter as error:
            self._retry(item, "flood limit", timedelta(seconds=error.retry_after))
        except (TelegramNetworkError, TelegramServerError) as error:
            self._retry(item, error.message)
        except TelegramForbiddenError as error:
            if item.kind in TO_USER:
                item.status, item.last_error = "blocked", "user blocked the bot"
                await self._user_unreachable(repo, item, request)
            else:
                await self._failed(repo, item, request, error.message)
        except TelegramBadRequest as error:
            if item.kind in COPIES and any(s in error.message.lower() for s in UNCOPIABLE):
                item.status, item.last_error = "failed", error.message[:200]
                await self._copy_failed(repo, item, request)
            elif _group_missing(error) and item.kind in STAFF_KINDS:
                self._retry(item, error.message)  # the group is gone: wait until it is back
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
            item.status = "sent"
            item.sent_at = self._clock.now()
        try:
            await repo.commit()
        except (StaleDataError, ObjectDeletedError):  # the item's request was erased meanwhile
            await repo.session.rollback()
            await self._erased_meanwhile(item_id, kind, ErasedMeanwhile())
            return "erased"
        if item.status == "pending":
            log.info("Outbox item %s (%s) retried later: %s", item.id, item.kind, item.last_error)
            return None
        if item.confirm_message_id is not None:
            error = None if item.status == "sent" else item.last_error or item.status
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
                kind=Kind.UNRELAY,
                chat_id=gone.chat_id,
                message_id=gone.message_id,
                text=blank,
                now=self._clock.now(),
            )
            await repo.commit()

    async def _link(
        self, repo: Repositories, chat_id: int, message_id: int, request: Request
    ) -> None:
        """Record a message just posted about `request`; its flush fails when the request was
        erased during the call (a changed row no longer there, a link to a missing row)."""
        try:
            await repo.requests.link(chat_id, message_id, request.id)
            await repo.session.flush()
        except (StaleDataError, ObjectDeletedError, IntegrityError) as error:
            admin = chat_id == self._admin_chat.id
            raise ErasedMeanwhile(*((chat_id, message_id) if admin else ())) from error

    def _retry(self, item: OutboxItem, why: str, delay: timedelta | None = None) -> None:
        item.status = "pending"
        item.last_error = why[:200]
        item.next_attempt_at = self._clock.now() + (
            backoff(item.attempts) if delay is None else delay
        )

    async def _failed(
        self, repo: Repositories, item: OutboxItem, request: Request | None, error: str
    ) -> None:
        """For good: logged with the item ID, told to staff, shown on the card."""
        item.status, item.last_error = "failed", error[:200]
        log.warning("Outbox item %s (%s) failed for good: %s", item.id, item.kind, error)
        now = self._clock.now()
        if item.kind == Kind.UNRELAY:
            key = str(json.loads(item.text or "{}").get("key", ""))
            text = self._t("attach.erase_leftover", count=1, ids=str(item.message_id), key=key)
            await repo.outbox.add(kind=Kind.NOTICE, text=text, now=now)
        elif item.kind != Kind.NOTICE:
            if request is not None:
                text = self._t(
                    "outbox.failed_request", item=item.id, id=request.id, error=escape(error)
                )
            else:
                text = self._t("outbox.failed", item=item.id, error=escape(error))
            await repo.outbox.add(kind=Kind.NOTICE, text=text, now=now)
        if item.kind in TO_USER and request is not None:
            await repo.requests.count_undelivered(request.id)
            await repo.outbox.add(kind=Kind.CARD_EDIT, request_id=request.id, now=now)

    async def _user_unreachable(
        self, repo: Repositories, item: OutboxItem, request: Request | None
    ) -> None:
        if item.user_id is not None:
            await repo.users.set_blocked(item.user_id, True)
        if request is not None and not request.user_unreachable:
            request.user_unreachable = True
            await repo.outbox.add(kind=Kind.CARD_EDIT, request_id=request.id, now=self._clock.now())

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
        attachment = await self._attachment(repo, item)
        if attachment is not None:
            attachment.status = "failed"
        if request is None:
            return
        now = self._clock.now()
        if item.kind == "copy_user":
            text = self._t("attach.failed_staff", id=request.id)
            await repo.outbox.add(kind="to_admin", request_id=request.id, text=text, now=now)
            return
        user = await repo.users.get(request.user_id)
        if user is not None:
            text = translator(user.language)("attach.failed_user", id=request.id)
            await repo.outbox.add(
                kind="to_user", user_id=user.id, request_id=request.id, text=text, now=now
            )

    @staticmethod
    async def _attachment(repo: Repositories, item: OutboxItem) -> RequestAttachment | None:
        payload = json.loads(item.text or "{}")
        return await repo.attachments.get(int(payload.get("attachment", 0)))

    # --- delivery by kind ------------------------------------------------------------------

    def _marked(self, item: OutboxItem, text: str, t: Translator | None = None) -> str:
        if item.repeated and item.kind in MARKED:
            return (t or self._t)("outbox.may_repeat") + "\n\n" + text
        return text

    async def _deliver(
        self, bot: Bot, repo: Repositories, item: OutboxItem, request: Request | None
    ) -> None:
        admin = self._admin_chat.id
        if item.kind == Kind.TO_USER:
            assert item.user_id is not None and item.text is not None
            user = await repo.users.get(item.user_id)
            t = translator(user.language) if user is not None else self._t
            await repo.commit()
            sent = await bot.send_message(item.user_id, self._marked(item, item.text, t))
            item.message_id = sent.message_id
            if request is not None:
                await self._link(repo, item.user_id, sent.message_id, request)
            return
        if item.kind in (Kind.TO_ADMIN, Kind.NOTICE):
            assert item.text is not None
            sent = await bot.send_message(admin, self._marked(item, item.text))
            item.message_id = sent.message_id
            return
        if item.kind == Kind.DUE_LIST:
            requests = await repo.requests.open_by_due(OPEN)
            breaches = await repo.breaches.authority_open()
            await repo.commit()
            now = self._clock.now()
            text, markup = due_page(requests, now, self._pack, self._t, 0, breaches)
            sent = await bot.send_message(admin, self._marked(item, text), reply_markup=markup)
            item.message_id = sent.message_id
            return
        if item.kind == Kind.UNRELAY:
            await self._unrelay(bot, item)
            return
        if item.kind == Kind.REDACT:
            assert item.chat_id is not None and item.message_id is not None and item.text
            try:
                await bot.edit_message_text(
                    item.text, chat_id=item.chat_id, message_id=item.message_id
                )
            except TelegramBadRequest as error:
                if not _nothing_to_edit(error):
                    raise
            return
        if request is None:
            raise Permanent("the request no longer exists")
        if item.kind in COPIES:
            await self._copy(bot, repo, item, request)
            return
        if item.kind == Kind.CARD:
            thread = await self._thread(bot, repo, request.type)
            text, markup = await self._card(repo, request)
            await repo.commit()
            sent = await bot.send_message(
                admin, self._marked(item, text), reply_markup=markup, message_thread_id=thread
            )
            request.card_message_id = item.message_id = sent.message_id
            await self._link(repo, admin, sent.message_id, request)
            return
        if item.kind == Kind.CARD_EDIT:
            if request.card_message_id is None:
                return  # the card is not posted (or failed): nothing to bring up to date
            text, markup = await self._card(repo, request)
            await repo.commit()
            try:
                await bot.edit_message_text(
                    text, chat_id=admin, message_id=request.card_message_id, reply_markup=markup
                )
            except TelegramBadRequest as error:
                if not _nothing_to_edit(error):
                    raise
            return
        assert item.kind == Kind.TO_STAFF and item.text is not None
        user = await repo.users.get(request.user_id)
        who = (user.first_name if user else None) or str(request.user_id)
        text = self._t("card.user_wrote", id=request.id, name=escape(who), text=escape(item.text))
        thread = await self._thread(bot, repo, request.type)
        await repo.commit()
        sent = await bot.send_message(
            admin,
            self._marked(item, text),
            message_thread_id=thread,
            reply_parameters=_under(request),
        )
        item.message_id = sent.message_id
        await self._link(repo, admin, sent.message_id, request)

    async def _unrelay(self, bot: Bot, item: OutboxItem) -> None:
        """What an erased person sent, relayed into the admin group, is deleted. Telegram lets a
        bot delete a message only within 48 hours of its sending: an older one is blanked (its
        text or caption replaced); one that can be neither is left to staff (`_failed` says so)."""
        assert item.chat_id is not None and item.message_id is not None
        chat, message_id = item.chat_id, item.message_id
        erased = str(json.loads(item.text or "{}").get("erased", ""))
        try:
            await bot.delete_message(chat, message_id)
            return
        except TelegramBadRequest as error:
            if "message to delete not found" in error.message:
                return
            if _group_missing(error):
                raise  # the group is gone for now: wait until it is back
        try:
            await bot.edit_message_text(erased, chat_id=chat, message_id=message_id)
            return
        except TelegramBadRequest as error:
            if _nothing_to_edit(error):
                return
        try:
            await bot.edit_message_caption(chat_id=chat, message_id=message_id, caption=erased)
        except TelegramBadRequest as error:
            if not _nothing_to_edit(error):
                raise Permanent("neither deleted nor blanked") from error

    async def _copy(self, bot: Bot, repo: Repositories, item: OutboxItem, request: Request) -> None:
        """Copy a file: the user's under the card (threaded like texts), staff's to the user."""
        attachment = await self._attachment(repo, item)
        if attachment is None:
            return  # erased meanwhile
        caption = str(json.loads(item.text or "{}").get("caption") or "")
        source = (attachment.source_chat_id, attachment.source_message_id)
        if item.kind == "copy_user":
            assert item.user_id is not None
            chat_id = item.user_id
            sent = await bot.copy_message(chat_id, *source, caption=caption)
        else:
            chat_id = self._admin_chat.id
            user = await repo.users.get(request.user_id)
            who = (user.first_name if user else None) or str(request.user_id)
            header = self._t(
                "attach.to_staff",
                id=request.id,
                name=escape(who),
                kind=self._t(f"attach.kind_{attachment.kind}"),
                size=megabytes(attachment.size),
            )
            sent = await bot.copy_message(
                chat_id,
                *source,
                caption=fit_caption(header, caption),
                message_thread_id=await self._thread(bot, repo, request.type),
                reply_parameters=_under(request),
            )
        attachment.copy_chat_id, attachment.copy_message_id = chat_id, sent.message_id
        attachment.status = "relayed"
        item.message_id = sent.message_id
        await self._link(repo, chat_id, sent.message_id, request)

    async def _card(
        self, repo: Repositories, request: Request
    ) -> tuple[str, InlineKeyboardMarkup | None]:
        user = await repo.users.get(request.user_id)
        recipients: list[str] = []
        if user is not None and request.type in TELL_RECIPIENTS:
            disclosed = await repo.disclosures.of_user(user.id)
            recipients = list(dict.fromkeys(d.recipient for d in disclosed))
        text = card_text(request, user, self._pack, self._t, recipients)
        extend = await extension_refusal(repo, self._pack, request, self._clock.now()) is None
        return text, keyboards.card(request, self._t, extend=extend)

    async def _thread(self, bot: Bot, repo: Repositories, kind: str) -> int | None:
        """The forum topic for this request type, created on first use; None in plain groups.
        Two instances may create one at once: the first stored serves, the other is deleted."""
        if self._forum is None:
            chat = await bot.get_chat(self._admin_chat.id)
            self._forum = bool(chat.is_forum)
        if not self._forum:
            return None
        key = f"topic:{self._admin_chat.id}:{kind}"
        stored = await repo.state.get(key)
        if stored is not None:
            return int(stored)
        await repo.commit()
        topic = await bot.create_forum_topic(self._admin_chat.id, self._t(f"rights.{kind}"))
        if await repo.state.put_if_absent(key, str(topic.message_thread_id)):
            return topic.message_thread_id
        theirs = await repo.state.get(key)
        assert theirs is not None
        with contextlib.suppress(TelegramAPIError):  # an empty topic left over at worst
            await bot.delete_forum_topic(self._admin_chat.id, topic.message_thread_id)
        return int(theirs)


def _under(request: Request) -> ReplyParameters | None:
    """Threaded under the card, when the card was posted (the card's lane comes first)."""
    if request.card_message_id is None:
        return None
    return ReplyParameters(message_id=request.card_message_id, allow_sending_without_reply=True)


def _nothing_to_edit(error: TelegramBadRequest) -> bool:
    """An edit that is already done, or whose message is gone, has nothing left to do."""
    return "not modified" in error.message or "message to edit not found" in error.message


def _group_missing(error: TelegramBadRequest) -> bool:
    return "chat not found" in error.message
