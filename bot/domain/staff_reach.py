"""Whether the desk can reach its staff. The admin group unreachable for any reason Telegram
gives (the bot removed or not a member, the group not found or deactivated, a right the bot
needs taken away) is one state of the desk, "staff unreachable since T", kept in `bot_state`:
it survives a restart and every instance shares it.

The one caller that enters the state (an insert only one instance wins) logs it once and queues
one private message to each owner (`OWNER_IDS`); the one caller that leaves it (a
compare-and-set delete) logs it, queues the owners' "fixed" message and makes every item to
staff due at once. Nothing to staff is failed meanwhile (the outbox keeps it waiting) and users
are told nothing about it: their requests stay "received"."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.enums import ChatMemberStatus
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.types import ChatMemberUnion

from bot.core.clock import Clock
from bot.core.formatting import fmt_datetime
from bot.core.i18n import Translator
from bot.domain.admin_chat import AdminChat
from storage.enums import STAFF_KINDS, OutboxKind
from storage.repositories import Repositories

log = logging.getLogger(__name__)

KEY = "staff_unreachable"
# Reasons (stored; shown by /healthz; each has a text `reach.reason_<reason>`).
KICKED = "kicked"  # someone removed the bot from the group
NOT_MEMBER = "not_member"  # the bot is not (or no longer) in the group
CHAT_NOT_FOUND = "chat_not_found"  # no such group: deleted, or a wrong ADMIN_CHAT_ID
DEACTIVATED = "deactivated"  # the group was deleted or deactivated
RIGHT = "right:"  # a right the bot needs is missing: `right:<name>`
# A right only redactions need: while it is missing, cards and the rest still go out.
DELETE_RIGHT = "right:can_delete_messages"
SEND_RIGHT = "right:can_send_messages"
TOPICS_RIGHT = "right:can_manage_topics"  # a forum group: the bot opens a topic per request type


# Telegram's words (lower case) for a right the bot lacks in the admin group, and that right.
MISSING_RIGHTS = (
    ("rights to send", "can_send_messages"),
    ("chat_write_forbidden", "can_send_messages"),
    ("rights to create a topic", "can_manage_topics"),
    ("topic_closed", "can_manage_topics"),
    ("rights to delete", "can_delete_messages"),
    ("message_delete_forbidden", "can_delete_messages"),
)


def right_missing(name: str) -> str:
    return RIGHT + name


def reason_of(error: TelegramAPIError) -> str | None:
    """Why the admin group cannot be reached, when Telegram's answer there says so (any 403,
    a group not found or deactivated, a right taken away); None for any other error (network,
    5xx, 429, a bad item). Such an answer is never an item's own fault."""
    words = error.message.lower()
    for fragment, right in MISSING_RIGHTS:
        if fragment in words:
            return right_missing(right)
    if isinstance(error, TelegramForbiddenError):
        return KICKED if "kicked" in words else NOT_MEMBER
    if not isinstance(error, TelegramBadRequest):
        return None
    if "chat not found" in words:
        return CHAT_NOT_FOUND
    if "deactivated" in words or "chat was deleted" in words:
        return DEACTIVATED
    return None


@dataclass(frozen=True)
class Unreachable:
    since: datetime
    reason: str

    def dump(self) -> str:
        return json.dumps({"since": self.since.isoformat(), "reason": self.reason})

    @classmethod
    def parse(cls, value: str) -> Unreachable:
        data = json.loads(value)
        return cls(datetime.fromisoformat(data["since"]), str(data["reason"]))

    def holds(self, kind: str) -> bool:
        """Whether items of `kind` wait while this lasts (a missing delete right holds only the
        deletions)."""
        if self.reason == DELETE_RIGHT:
            return kind == OutboxKind.UNRELAY
        return kind in STAFF_KINDS


async def current(repo: Repositories) -> Unreachable | None:
    value = await repo.state.get(KEY)
    return None if value is None else Unreachable.parse(value)


def missing(member: ChatMemberUnion, *, forum: bool = False) -> str | None:
    """What keeps the bot, as this member of the admin group (a forum or not), from doing its
    work there, the worst first: not in the group, no right to post, no right to open topics
    (a forum), no right to delete (redactions); None if nothing is missing. A plain member
    can post but not delete: that is a missing right too."""
    status = member.status
    if status == ChatMemberStatus.KICKED:
        return KICKED
    if status == ChatMemberStatus.LEFT:
        return NOT_MEMBER
    if status == ChatMemberStatus.RESTRICTED and not getattr(member, "can_send_messages", False):
        return SEND_RIGHT
    if status == ChatMemberStatus.CREATOR:
        return None
    admin = status == ChatMemberStatus.ADMINISTRATOR
    if forum and not (admin and getattr(member, "can_manage_topics", False)):
        return TOPICS_RIGHT
    if not (admin and getattr(member, "can_delete_messages", False)):
        return DELETE_RIGHT
    return None


async def probe(bot: Bot, chat_id: int) -> str | None:
    """Ask Telegram what the bot is in the admin group (and whether it is a forum): what is
    missing there (`missing`), or None. Telegram's errors are the caller's."""
    member = await bot.get_chat_member(chat_id, bot.id)
    chat = await bot.get_chat(chat_id)
    return missing(member, forum=bool(chat.is_forum))


class StaffReach:
    """Enters and leaves the state; owned by the app, used by the outbox, the start-up check
    and the handler of the bot's own membership in the admin group."""

    def __init__(
        self,
        clock: Clock,
        owner_ids: Sequence[int],
        t: Translator,
        zone: ZoneInfo,
        admin_chat: AdminChat,
    ) -> None:
        self._clock = clock
        self._owners = tuple(dict.fromkeys(owner_ids))
        self._t = t
        self._zone = zone
        self._admin_chat = admin_chat

    def describe(self, reason: str) -> str:
        if reason.startswith(RIGHT):
            return self._t("reach.reason_right", right=reason.removeprefix(RIGHT))
        return self._t(f"reach.reason_{reason}")

    async def lost(self, repo: Repositories, reason: str) -> bool:
        """The admin group cannot be reached for `reason`. True for the one caller that entered
        the state (it logs once and tells the owners); a later reason replaces the stored one,
        `since` stays."""
        now = self._clock.now()
        if await repo.state.put_if_absent(KEY, Unreachable(now, reason).dump()):
            log.warning(
                "Staff unreachable: the admin group %s cannot be reached (%s); items to staff "
                "wait until it can, users are served",
                self._admin_chat.id,
                reason,
            )
            since = fmt_datetime(now, self._t, self._zone)
            text = self._t("reach.lost", reason=self.describe(reason), since=since)
            await self._tell_owners(repo, text)
            return True
        stored = await repo.state.get(KEY)
        if stored is not None:
            state = Unreachable.parse(stored)
            if state.reason != reason:
                changed = Unreachable(state.since, reason).dump()
                await repo.state.replace_if(KEY, stored, changed)
        return False

    async def found(self, repo: Repositories, kind: str | None = None) -> bool:
        """The admin group answers again (after an item of `kind` went out there, or the bot's
        rights were checked: None). True for the one caller that left the state: it logs,
        tells the owners and makes every item to staff due now."""
        stored = await repo.state.get(KEY)
        if stored is None:
            return False
        state = Unreachable.parse(stored)
        if kind is not None and not state.holds(kind):
            return False  # e.g. a card went out while only deletions are refused
        if (
            kind is not None
            and state.reason not in (SEND_RIGHT, DELETE_RIGHT)
            and (state.reason.startswith(RIGHT))
        ):
            # A message that needed no topic says nothing of the right to open one: only a
            # check of the bot's rights (check()) ends this.
            return False
        if not await repo.state.delete_if(KEY, stored):
            return False  # another instance left it first
        now = self._clock.now()
        away = int((now - state.since).total_seconds())
        log.warning("Staff reachable again: the admin group answers after %s s", away)
        since = fmt_datetime(state.since, self._t, self._zone)
        await self._tell_owners(repo, self._t("reach.found", since=since))
        await repo.outbox.hasten(STAFF_KINDS, now)
        return True

    async def check(self, bot: Bot, repo: Repositories) -> str | None:
        """Ask Telegram what the bot is in the admin group and enter or leave the state; the
        reason it cannot post there, or None. An answer that says nothing of the group (the
        network, a 5xx) changes nothing: the outbox's next try decides. The caller commits."""
        try:
            reason = await probe(bot, self._admin_chat.id)
        except TelegramAPIError as error:
            reason = reason_of(error)
            if reason is None:
                log.warning("Admin group check failed (%s); the outbox tries again", error.message)
                return None
        if reason is None:
            await self.found(repo)
        else:
            await self.lost(repo, reason)
        return reason

    async def _tell_owners(self, repo: Repositories, text: str) -> None:
        now = self._clock.now()
        for owner in self._owners:
            await repo.outbox.add(kind=OutboxKind.TO_OWNER, chat_id=owner, text=text, now=now)
