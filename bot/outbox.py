"""Delivers what the database says must be delivered: request cards to the admin group (into a
topic per request type when the group is a forum), card edits, and messages to users and staff.

Items are retried with backoff until they go through, also after a restart. An item is marked
`sending` before the call to Telegram, so a crash never produces a second copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import timedelta
from html import escape

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramRetryAfter,
)
from aiogram.types import InlineKeyboardMarkup, ReplyParameters
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import keyboards
from bot.admin_chat import AdminChat
from bot.attachments import fit_caption, megabytes
from bot.clock import Clock
from bot.filing import extension_refusal
from bot.i18n import translator
from bot.policy import PolicyPack
from bot.render import card_text
from storage.models import OutboxItem, Request, RequestAttachment
from storage.repositories import Repositories

log = logging.getLogger(__name__)
MAX_BACKOFF = timedelta(minutes=15)
TO_USER = frozenset({"to_user", "copy_user"})  # items delivered into a user's chat
COPIES = frozenset({"copy_user", "copy_staff"})  # files copied with copyMessage
# Telegram's answers when a message cannot be copied at all (deleted, protected, invalid).
UNCOPIABLE = ("message to copy not found", "can't be copied", "message_id_invalid")
POLL_SECONDS = 1.0
# Longer than any Bot API call may take (aiogram gives up after 60 s).
CLAIM_LEASE = timedelta(minutes=5)


# Requests whose outcome each recipient of a disclosure must be told of (GDPR art. 19).
TELL_RECIPIENTS = frozenset({"erasure", "rectification", "restriction"})


class _Later(Exception):
    """Not deliverable yet (e.g. a reply whose card has not been posted); try again later."""


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=5 * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


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

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, bot: Bot) -> None:
        async with self._sessions() as session:
            repo = Repositories(session)
            interrupted = await repo.outbox.mark_interrupted()
            await repo.commit()
        if interrupted:
            log.warning("%s outbox items interrupted mid-call are not repeated", interrupted)
        self._task = asyncio.create_task(self._loop(bot), name="outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self, bot: Bot) -> None:
        while True:
            try:
                await self.run_once(bot)
            except Exception:  # the worker must survive anything and try again
                log.exception("Outbox pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            self._wake.clear()

    async def drain(self, bot: Bot) -> None:
        """Deliver everything that is due now (tests; shutdown)."""
        while await self.run_once(bot):
            pass

    # --- one pass --------------------------------------------------------------------------

    async def run_once(self, bot: Bot) -> int:
        """Try every due item once, oldest first; a chat whose item waits holds later ones."""
        async with self._lock:
            async with self._sessions() as session:
                repo = Repositories(session)
                # An item claimed long ago belongs to an instance that died mid-call.
                if await repo.outbox.mark_interrupted(self._clock.now() - CLAIM_LEASE):
                    await repo.commit()
                items = await repo.outbox.pending()
            delivered = 0
            held: set[str] = set()
            for item in items:
                lane = self._lane(item)
                if lane in held or item.next_attempt_at > self._clock.now():
                    held.add(lane)
                    continue
                if await self._attempt(bot, item):
                    delivered += 1
                else:
                    held.add(lane)
            return delivered

    @staticmethod
    def _lane(item: OutboxItem) -> str:
        """Items to the same chat keep their order."""
        return f"user:{item.user_id}" if item.kind in TO_USER else "staff"

    async def _attempt(self, bot: Bot, item: OutboxItem) -> bool:
        async with self._sessions() as session:
            repo = Repositories(session)
            claimed = await repo.outbox.claim(
                item.id, to_user=item.kind == "to_user", user_id=item.user_id, now=self._clock.now()
            )
            await repo.commit()  # written before Telegram is called: never a second copy
            if not claimed:  # another instance has it, or its lane is busy there
                return False
            item = await repo.outbox.get(item.id)  # type: ignore[assignment]
            assert item is not None
            request = await repo.requests.get(item.request_id) if item.request_id else None
            try:
                await self._deliver(bot, repo, item, request)
            except _Later:
                self._retry(item, "waiting for the card")
            except TelegramMigrateToChat as migrated:
                await self._admin_chat.migrate(repo, migrated.migrate_to_chat_id)
                item.status, item.next_attempt_at = "pending", self._clock.now()
            except TelegramRetryAfter as error:
                self._retry(item, "flood limit", timedelta(seconds=error.retry_after))
            except TelegramForbiddenError as error:
                if item.kind in TO_USER:
                    item.status, item.last_error = "blocked", "user blocked the bot"
                    await self._user_unreachable(repo, item, request)
                else:
                    self._retry(item, error.message)
            except TelegramBadRequest as error:
                if item.kind in COPIES and any(s in error.message.lower() for s in UNCOPIABLE):
                    item.status, item.last_error = "failed", error.message[:200]
                    await self._copy_failed(repo, item, request)
                elif item.kind in TO_USER:
                    item.status, item.last_error = "failed", error.message[:200]
                else:  # the admin group is missing or we were removed: wait until it is back
                    self._retry(item, error.message)
            except TelegramAPIError as error:
                self._retry(item, error.message)
            except Exception as error:  # a bug or a broken answer: keep the item, try later
                log.exception("Outbox item %s (%s) failed", item.id, item.kind)
                self._retry(item, type(error).__name__)
            else:
                item.status = "sent"
                item.sent_at = self._clock.now()
            await repo.commit()
            if item.status != "sent":
                log.info("Outbox item %s (%s): %s", item.id, item.kind, item.last_error)
            return item.status == "sent"

    def _retry(self, item: OutboxItem, why: str, delay: timedelta | None = None) -> None:
        item.status = "pending"
        item.last_error = why[:200]
        item.next_attempt_at = self._clock.now() + (delay or backoff(item.attempts))

    async def _user_unreachable(
        self, repo: Repositories, item: OutboxItem, request: Request | None
    ) -> None:
        user = await repo.users.get(item.user_id) if item.user_id else None
        if user is not None:
            user.blocked_bot = True
        if request is not None and not request.user_unreachable:
            request.user_unreachable = True
            await repo.outbox.add(kind="card_edit", request_id=request.id, now=self._clock.now())

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

    async def _deliver(
        self, bot: Bot, repo: Repositories, item: OutboxItem, request: Request | None
    ) -> None:
        admin = self._admin_chat.id
        if item.kind == "to_user":
            assert item.user_id is not None and item.text is not None
            sent = await bot.send_message(item.user_id, item.text)
            item.message_id = sent.message_id
            if request is not None:
                await repo.requests.link(item.user_id, sent.message_id, request.id)
            return
        if item.kind == "to_admin":
            assert item.text is not None
            sent = await bot.send_message(admin, item.text)
            item.message_id = sent.message_id
            return
        assert request is not None
        if item.kind in COPIES:
            await self._copy(bot, repo, item, request)
            return
        if item.kind == "card":
            thread = await self._thread(bot, repo, request.type)
            text, markup = await self._card(repo, request)
            sent = await bot.send_message(
                admin, text, reply_markup=markup, message_thread_id=thread
            )
            request.card_message_id = item.message_id = sent.message_id
            await repo.requests.link(admin, sent.message_id, request.id)
            return
        if request.card_message_id is None:
            if item.kind == "card_edit":
                return  # the card is still queued and will show the current state
            raise _Later
        if item.kind == "card_edit":
            text, markup = await self._card(repo, request)
            try:
                await bot.edit_message_text(
                    text, chat_id=admin, message_id=request.card_message_id, reply_markup=markup
                )
            except TelegramBadRequest as error:
                if "not modified" not in error.message and "not found" not in error.message:
                    raise
            return
        assert item.kind == "to_staff" and item.text is not None
        user = await repo.users.get(request.user_id)
        who = (user.first_name if user else None) or str(request.user_id)
        text = self._t("card.user_wrote", id=request.id, name=escape(who), text=escape(item.text))
        thread = await self._thread(bot, repo, request.type)
        sent = await bot.send_message(
            admin,
            text,
            message_thread_id=thread,
            reply_parameters=ReplyParameters(
                message_id=request.card_message_id, allow_sending_without_reply=True
            ),
        )
        item.message_id = sent.message_id
        await repo.requests.link(admin, sent.message_id, request.id)

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
            if request.card_message_id is None:
                raise _Later
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
                reply_parameters=ReplyParameters(
                    message_id=request.card_message_id, allow_sending_without_reply=True
                ),
            )
        attachment.copy_chat_id, attachment.copy_message_id = chat_id, sent.message_id
        attachment.status = "relayed"
        item.message_id = sent.message_id
        await repo.requests.link(chat_id, sent.message_id, request.id)

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
        """The forum topic for this request type, created on first use; None in plain groups."""
        if self._forum is None:
            chat = await bot.get_chat(self._admin_chat.id)
            self._forum = bool(chat.is_forum)
        if not self._forum:
            return None
        key = f"topic:{self._admin_chat.id}:{kind}"
        stored = await repo.state.get(key)
        if stored is not None:
            return int(stored)
        topic = await bot.create_forum_topic(self._admin_chat.id, self._t(f"rights.{kind}"))
        await repo.state.set(key, str(topic.message_thread_id))
        return topic.message_thread_id
