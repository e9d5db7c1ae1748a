"""Forum topics: when the admin group is a forum, each request type's cards and what is
threaded under them go into a topic of their own, created on first use."""

from __future__ import annotations

import contextlib

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

from bot.core.i18n import Translator
from bot.domain.admin_chat import AdminChat
from storage.repositories import Repositories


class ForumTopics:
    """The topic of each request type in the admin group (its ID kept in `bot_state`)."""

    def __init__(self, admin_chat: AdminChat, t: Translator) -> None:
        self._admin_chat = admin_chat
        self._t = t
        self._forum: bool | None = None

    async def thread(self, bot: Bot, repo: Repositories, kind: str) -> int | None:
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
        # The reads end before the call: no transaction (nor its snapshot) stays open while
        # Telegram answers.
        await repo.commit()
        topic = await bot.create_forum_topic(self._admin_chat.id, self._t(f"rights.{kind}"))
        if await repo.state.put_if_absent(key, str(topic.message_thread_id)):
            return topic.message_thread_id
        theirs = await repo.state.get(key)
        assert theirs is not None
        with contextlib.suppress(TelegramAPIError):  # an empty topic left over at worst
            await bot.delete_forum_topic(self._admin_chat.id, topic.message_thread_id)
        return int(theirs)
