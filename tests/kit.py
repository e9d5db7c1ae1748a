"""A small test language over the real bot and the fake Bot API server.

    ann = bot.user("Ann", lang="en")
    await ann.send("/start")
    await ann.tap("16 or older")
    ann.expect("Privacy notice")

Updates go through the real dispatcher (`feed_update`); everything the bot sends travels through
aiogram's real HTTP session to the fake server, which records it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiogram.types import Update

from bot.core.clock import Clock
from bot.core.packs import load_pack
from bot.domain.erasure import COMPACT_PENDING, Pending
from bot.service.app import App, build_app
from bot.service.config import Settings
from bot.service.startup import prepare
from storage.repositories import Repositories
from tests.engines import database_url
from tests.fake_telegram import BOT_ID, TOKEN, Event, FakeTelegram, _member

ADMIN_CHAT_ID = -1001234567890
PSEUDONYM_SECRET = "test-secret-for-pseudonyms-0123456789"
DATA_KEY = "dGVzdC1tYXN0ZXIta2V5LW9mLTMyLWJ5dGVzLWxvbmc="  # 32 bytes, tests only
_user_ids = itertools.count(5_000_001)


@dataclass
class Reply:
    """What the bot did in answer to one action of a person."""

    events: list[Event] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [e.text for e in self.events if e.text]

    def find(self, fragment: str) -> Event | None:
        return next((e for e in self.events if fragment in e.text), None)


class Harness:
    """The real bot (production wiring) over a database in `tmp_path`, against the fake API."""

    def __init__(
        self,
        fake: FakeTelegram,
        tmp_path: Path,
        *,
        pack: str = "by_99z_sports",
        clock: Clock | None = None,
        systems: bool = False,
        **settings: Any,
    ) -> None:
        self.fake = fake
        self.clock = clock
        self.db_path = tmp_path / "bot.db"
        settings.setdefault("database_url", database_url(tmp_path))
        if "data_key_file" not in settings:
            settings.setdefault("data_key", DATA_KEY)
        # The admin group's pace (STAFF_RATE) needs the clock to move: tests of it set it.
        settings.setdefault("staff_rate", 0)
        self.settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            bot_token=TOKEN,  # type: ignore[arg-type]
            admin_chat_id=ADMIN_CHAT_ID,
            pseudonym_secret=PSEUDONYM_SECRET,  # type: ignore[arg-type]
            telegram_api_url=fake.url,
            policy_pack=pack,
            **settings,
        )
        self.pack = load_pack(pack)
        if not systems:
            # The desk's own mechanics, as with a pack that lists no systems of the operator's
            # (the shipped packs' demo systems, not connected, would wait for a tick by hand):
            # a test of the systems asks for them.
            self.pack = self.pack.model_copy(update={"systems": []})
        # How the pack's systems are connected (bot.delivery.systems.registry): tests of the
        # systems set fakes here before start().
        self.factory: Any = None
        self._app: App | None = None
        if ADMIN_CHAT_ID not in fake.chats:
            fake.add_group(ADMIN_CHAT_ID, "Privacy staff")

    @property
    def app(self) -> App:
        assert self._app is not None, "call start() first"
        return self._app

    async def start(self) -> Harness:
        self._app = await build_app(self.settings, self.pack, self.clock, factory=self.factory)
        try:
            await prepare(self._app)
            # The scheduler's checks at start (holds, reminders, announcements) are over before
            # a test writes anything they might act on; the next run is CHECK_SECONDS away. A
            # test that runs a check itself (tick, retention.run, release_holds, compaction) and
            # expects it to do the work stops the scheduler first (`app.reminders.stop()`): a
            # slow run may reach the next pass, which would do it first.
            async with asyncio.timeout(30):
                await self._app.reminders.first_pass.wait()
            # What the start queued for staff (the calendar-data warning, the pack's fields to
            # fill in) is sent before a test begins: a reply a test reads holds only its own.
            await self._app.outbox.drain(self._app.bot)
        except BaseException:
            await self.stop()
            raise
        return self

    async def stop(self) -> None:
        if self._app is not None:
            await self._app.close()
            self._app = None

    async def restart(self) -> None:
        """A new process in all but name: new dispatcher, bot, FSM storage; same database."""
        await self.stop()
        await self.start()

    async def feed(self, update: dict[str, Any]) -> Reply:
        start = len(self.fake.events)
        update.setdefault("update_id", self.fake.new_update_id())
        parsed = Update.model_validate(update, context={"bot": self.app.bot})
        await self.app.dispatcher.feed_update(self.app.bot, parsed)
        return Reply(self.fake.events[start:])

    async def settle(self) -> None:
        """Let the workers do everything that is due now (outbox, campaigns, and the scheduler's
        compaction after an erasure, which PostgreSQL runs once older transactions ended)."""
        await self.app.outbox.drain(self.app.bot)
        await self.app.campaigns.drain()
        await self.app.erasure.compact_if_pending()

    async def pending_compaction(self) -> Pending | None:
        """The compaction flag an erasure leaves (bot.domain.erasure.COMPACT_PENDING), if any."""
        async with self.app.sessions() as session:
            value = await Repositories(session).state.get(COMPACT_PENDING)
        return None if value is None else Pending.parse(value)

    async def compacted(self) -> None:
        """The scheduler's compaction, tried again until it has run. PostgreSQL's waits for
        every transaction older than the erasure that still writes, in any database of the
        server (other test runs share it): a few tries may be needed, never minutes."""
        for _ in range(300):
            await self.app.erasure.compact_if_pending()
            if await self.pending_compaction() is None:
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the compaction after the erasure did not run within 30 s")

    async def bot_status(
        self,
        status: str,
        *,
        was: str,
        by: Person | None = None,
        rights: dict[str, bool] | None = None,
    ) -> Reply:
        """The bot's own status in the admin group changes to `status` (removed: "kicked",
        added back or promoted: "administrator", demoted: "restricted"...), with `rights` that
        differ from the status's defaults: the fake answers so from now on, and Telegram's
        `my_chat_member` update is fed to the bot."""
        self.fake.members[(ADMIN_CHAT_ID, BOT_ID)] = status
        self.fake.rights[(ADMIN_CHAT_ID, BOT_ID)] = dict(rights or {})
        chat = self.fake.chats[ADMIN_CHAT_ID]
        actor = by.as_user() if by is not None else {"id": 1, "is_bot": False, "first_name": "O"}
        return await self.feed(
            {
                "my_chat_member": {
                    "chat": chat,
                    "from": actor,
                    "date": int(time.time()),
                    "old_chat_member": _member(was, self.fake.bot_user),
                    "new_chat_member": _member(status, self.fake.bot_user) | (rights or {}),
                }
            }
        )

    def cards(self) -> list[Event]:
        """Request cards posted in the admin group, oldest first."""
        return [
            e
            for e in self.fake.events
            if (
                e.chat_id == self.app.admin_chat.id
                and e.kind == "message"
                and "Request #" in e.text
            )
            or (
                e.chat_id == self.app.admin_chat.id
                and e.kind == "message"
                and "Заявление №" in e.text
            )
        ]

    def user(
        self,
        first_name: str,
        *,
        lang: str | None = "en",
        username: str | None = None,
        user_id: int | None = None,
    ) -> Person:
        person = Person(self, user_id or next(_user_ids), first_name, username, lang)
        self.fake.add_private_chat(person.as_user())
        return person

    def staff(self, first_name: str, *, status: str = "administrator") -> Person:
        person = Person(self, next(_user_ids), first_name, None, "en", chat_id=ADMIN_CHAT_ID)
        self.fake.members[(ADMIN_CHAT_ID, person.id)] = status
        return person


class Person:
    """A Telegram user acting in one chat (their private chat, or a group)."""

    def __init__(
        self,
        harness: Harness,
        user_id: int,
        first_name: str,
        username: str | None,
        lang: str | None,
        chat_id: int | None = None,
    ) -> None:
        self.h = harness
        self.id = user_id
        self.first_name = first_name
        self.username = username
        self.lang = lang
        self.chat_id = chat_id if chat_id is not None else user_id
        self.last = Reply()

    def as_user(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            user["username"] = self.username
        if self.lang:
            user["language_code"] = self.lang
        return user

    def _chat(self) -> dict[str, Any]:
        return self.h.fake.chats.get(self.chat_id) or {"id": self.chat_id, "type": "private"}

    def in_chat(self, chat_id: int, chat_type: str = "group") -> Person:
        """The same person, acting in another chat."""
        if chat_id not in self.h.fake.chats:
            self.h.fake.chats[chat_id] = {"id": chat_id, "type": chat_type, "title": "Other"}
        other = Person(self.h, self.id, self.first_name, self.username, self.lang, chat_id)
        return other

    # --- actions ---------------------------------------------------------------------------

    async def _message(self, **content: Any) -> Reply:
        message = {
            "message_id": self.h.fake.next_message_id(self.chat_id),
            "date": int(time.time()),
            "chat": self._chat(),
            "from": self.as_user(),
            **content,
        }
        self.h.fake.record_incoming(message)
        self.last = await self.h.feed({"message": message})
        return self.last

    async def send(
        self,
        text: str,
        *,
        reply_to: Event | None = None,
        bold: str | None = None,
    ) -> Reply:
        """Send a text; `bold` marks that part of it bold, as a Telegram client would."""
        content: dict[str, Any] = {"text": text, "entities": []}
        if text.startswith("/"):
            length = len(text.split()[0])
            content["entities"].append({"type": "bot_command", "offset": 0, "length": length})
        if bold:
            offset = text.index(bold)
            content["entities"].append({"type": "bold", "offset": offset, "length": len(bold)})
        if reply_to is not None:
            assert reply_to.message_id is not None
            content["reply_to_message"] = self.h.fake.messages[(self.chat_id, reply_to.message_id)]
        return await self._message(**content)

    async def reply_to(self, event: Event, text: str) -> Reply:
        return await self.send(text, reply_to=event)

    async def send_photo(
        self, *, size: int = 50_000, caption: str | None = None, reply_to: Event | None = None
    ) -> Reply:
        photo = [
            {"file_id": "p0", "file_unique_id": "u0", "width": 1, "height": 1, "file_size": 90},
            {"file_id": "p1", "file_unique_id": "u1", "width": 10, "height": 10, "file_size": size},
        ]
        return await self._message(photo=photo, **self._extras(caption, reply_to))

    async def send_document(
        self,
        name: str = "proof.pdf",
        *,
        size: int = 120_000,
        caption: str | None = None,
        reply_to: Event | None = None,
        protected: bool = False,
    ) -> Reply:
        document = {"file_id": f"d-{name}", "file_unique_id": f"u-{name}", "file_name": name}
        document["file_size"] = size
        extras = self._extras(caption, reply_to)
        if protected:
            extras["has_protected_content"] = True
        return await self._message(document=document, **extras)

    def _extras(self, caption: str | None, reply_to: Event | None) -> dict[str, Any]:
        extras: dict[str, Any] = {}
        if caption is not None:
            extras["caption"] = caption
        if reply_to is not None:
            assert reply_to.message_id is not None
            extras["reply_to_message"] = self.h.fake.messages[(self.chat_id, reply_to.message_id)]
        return extras

    async def send_sticker(self, *, reply_to: Event | None = None) -> Reply:
        sticker = {
            "file_id": "s1",
            "file_unique_id": "su1",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
        return await self._message(sticker=sticker, **self._extras(None, reply_to))

    async def send_contact(self, phone: str, *, user_id: int | None = None) -> Reply:
        contact: dict[str, Any] = {"phone_number": phone, "first_name": self.first_name}
        if user_id is not None:
            contact["user_id"] = user_id
        return await self._message(contact=contact)

    def button_message(self, label: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The newest bot message in this chat with a button labelled `label` (exact or part)."""
        candidates = sorted(
            (m for (chat, _), m in self.h.fake.messages.items() if chat == self.chat_id),
            key=lambda m: m["message_id"],
            reverse=True,
        )
        for exact in (True, False):
            for message in candidates:
                rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
                for button in (b for row in rows for b in row):
                    text = button["text"]
                    if (text == label) if exact else (label in text):
                        return message, button
        labels = [
            b["text"]
            for m in candidates
            for row in (m.get("reply_markup") or {}).get("inline_keyboard", [])
            for b in row
        ]
        raise AssertionError(f"no button {label!r} in chat {self.chat_id}; buttons: {labels}")

    async def tap(self, label: str) -> Reply:
        message, button = self.button_message(label)
        assert "callback_data" in button, f"button {label!r} is not a callback button"
        return await self.tap_data(button["callback_data"], message)

    async def tap_data(self, data: str, message: dict[str, Any] | None = None) -> Reply:
        """Press a button with any data, also forged: clients can send whatever they like."""
        if message is None:
            message = {
                "message_id": 1,
                "date": int(time.time()),
                "chat": self._chat(),
                "from": self.h.fake.bot_user,
                "text": "x",
            }
        query = {
            "id": self.h.fake.new_callback_id(),
            "from": self.as_user(),
            "chat_instance": str(self.chat_id),
            "message": message,
            "data": data,
        }
        self.last = await self.h.feed({"callback_query": query})
        return self.last

    # --- expectations ----------------------------------------------------------------------

    def expect(self, fragment: str, reply: Reply | None = None) -> Event:
        """Something the bot showed this person after their last action contains `fragment`."""
        reply = reply or self.last
        event = reply.find(fragment)
        if event is None:
            raise AssertionError(f"expected {fragment!r} in the reply; the bot said: {reply.texts}")
        return event

    def expect_not(self, fragment: str) -> None:
        if (event := self.last.find(fragment)) is not None:
            raise AssertionError(f"did not expect {fragment!r}; the bot said: {event.text!r}")

    def expect_silence(self) -> None:
        if self.last.events:
            raise AssertionError(f"expected no reply; the bot said: {self.last.texts}")

    @property
    def inbox(self) -> list[Event]:
        """Every message the bot sent to this chat, oldest first."""
        return [
            e
            for e in self.h.fake.events
            if e.chat_id == self.chat_id and e.kind in ("message", "copy")
        ]
