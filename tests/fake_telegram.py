"""A fake Telegram Bot API server: an in-process aiohttp app the real bot talks to over HTTP.

It keeps chats and messages, records everything the bot does, answers like Telegram (403 for a
user who blocked the bot, 429 with retry_after, 400 for bad requests such as unknown chats,
too long texts, broken HTML, oversized callback data or unmodified edits), and serves
getUpdates so that `python -m bot` can run against it unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any

from aiogram.types import (
    AcceptedGiftTypes,
    ChatFullInfo,
    ChatMemberAdministrator,
    ChatMemberRestricted,
)
from aiohttp import web

TOKEN = "123456789:TEST-token-for-the-fake-bot-api-000"
BOT_ID = 123456789
BOT_USERNAME = "privacy_desk_test_bot"
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
MAX_CAPTION = 1024
ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
    "tg-spoiler", "span", "blockquote", "tg-emoji",
}  # fmt: skip


class ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after


class _HtmlCheck(HTMLParser):
    """Parses Telegram's HTML subset the way the server does: unknown or unclosed tags fail."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.plain: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            raise ApiError(
                400, f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}"'
            )
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            raise ApiError(400, f'Bad Request: can\'t parse entities: Unmatched end tag "{tag}"')

    def handle_data(self, data: str) -> None:
        self.plain.append(data)


def plain_text(text: str, parse_mode: str | None) -> str:
    if parse_mode != "HTML":
        return text
    parser = _HtmlCheck()
    parser.feed(text)
    parser.close()
    if parser.stack:
        raise ApiError(400, "Bad Request: can't parse entities: unclosed tag")
    return html.unescape("".join(parser.plain))


@dataclass
class Event:
    """One thing the bot did that a person would see."""

    kind: str  # "message", "copy", "edit", "answer", "document", "photo", "delete"
    chat_id: int | None
    message_id: int | None
    text: str
    markup: dict[str, Any] | None = None
    show_alert: bool = False
    callback_query_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def buttons(self) -> list[dict[str, Any]]:
        rows = (self.markup or {}).get("inline_keyboard") or (self.markup or {}).get("keyboard")
        return [button for row in rows or [] for button in row]


@dataclass
class Failure:
    method: str
    chat_id: int | None
    status: int
    description: str
    retry_after: int | None
    times: int


@dataclass
class FloodLimit:
    """Telegram's limit of messages in one group: posts and edits beyond `per_minute` in any
    60 seconds of `now` (a test's clock) are answered 429; `refused` counts them."""

    per_minute: int
    now: Callable[[], datetime]
    times: list[datetime] = field(default_factory=list)
    refused: int = 0

    def check(self) -> None:
        now = self.now()
        self.times = [t for t in self.times if t > now - timedelta(seconds=60)]
        if len(self.times) >= self.per_minute:
            self.refused += 1
            wait = int((self.times[0] + timedelta(seconds=60) - now).total_seconds()) + 1
            raise ApiError(429, f"Too Many Requests: retry after {wait}", wait)
        self.times.append(now)


# What a group's flood limit counts.
POSTS = frozenset({"sendMessage", "copyMessage", "editMessageText", "sendDocument", "sendPhoto"})


class FakeTelegram:
    def __init__(self) -> None:
        self.bot_user = {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Privacy desk",
            "username": BOT_USERNAME,
        }
        self.chats: dict[int, dict[str, Any]] = {}
        self.members: dict[tuple[int, int], str] = {}
        # A member's rights that differ from its status's defaults (`_member`), by (chat, user).
        self.rights: dict[tuple[int, int], dict[str, bool]] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.events: list[Event] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.blocked: set[int] = set()
        self.failures: list[Failure] = []
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.descriptions: dict[str, dict[str, str]] = {}
        # The menu button of each private chat set with setChatMenuButton (None: the default).
        self.menu_buttons: dict[int, dict[str, Any] | None] = {}
        self.holds: dict[int, asyncio.Event] = {}
        self.topics: dict[tuple[int, int], str] = {}
        self.held: set[int] = set()
        self.webhook: dict[str, Any] | None = None
        self.flood_limits: dict[int, FloodLimit] = {}
        self._ids = itertools.count(1000)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._new_update = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- world set-up used by tests --------------------------------------------------------

    def add_private_chat(self, user: dict[str, Any]) -> None:
        self.chats[user["id"]] = {
            "id": user["id"],
            "type": "private",
            "first_name": user["first_name"],
        }

    def add_group(
        self, chat_id: int, title: str, *, bot_status: str = "administrator", forum: bool = False
    ) -> None:
        self.chats[chat_id] = {"id": chat_id, "type": "supergroup", "title": title}
        if forum:
            self.chats[chat_id]["is_forum"] = True
        self.members[(chat_id, BOT_ID)] = bot_status

    def remove_chat(self, chat_id: int) -> None:
        self.chats.pop(chat_id, None)

    def fail(
        self,
        method: str,
        *,
        chat_id: int | None = None,
        status: int = 400,
        description: str = "Bad Request",
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls of `method` (to `chat_id`, if given) fail."""
        self.failures.append(Failure(method, chat_id, status, description, retry_after, times))

    def flood_limit(
        self, chat_id: int, now: Callable[[], datetime], per_minute: int = 20
    ) -> FloodLimit:
        """Limit the messages the bot posts or edits in `chat_id` as Telegram does in a group."""
        self.flood_limits[chat_id] = FloodLimit(per_minute, now)
        return self.flood_limits[chat_id]

    def hold(self, chat_id: int) -> asyncio.Event:
        """Keep the next sendMessage calls to `chat_id` waiting (a slow or hung request) until
        the returned event is set. `held` tells whether a call is waiting now."""
        self.holds[chat_id] = asyncio.Event()
        return self.holds[chat_id]

    def next_message_id(self, chat_id: int) -> int:
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        return next(counter)

    def record_incoming(self, message: dict[str, Any]) -> None:
        self.messages[(message["chat"]["id"], message["message_id"])] = message

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **update}
        self._updates.append(update)
        self._new_update.set()
        return update

    def new_update_id(self) -> int:
        return next(self._update_ids)

    def new_callback_id(self) -> str:
        return str(next(self._ids))

    # --- HTTP ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            return self._error(ApiError(401, "Unauthorized"))
        method = request.match_info["method"]
        params = await self._params(request)
        self.calls.append((method, params))
        chat_id = _int_or_none(params.get("chat_id"))
        if method == "sendMessage" and chat_id in self.holds:
            self.held.add(chat_id)
            await self.holds[chat_id].wait()
            self.held.discard(chat_id)
        try:
            if method in POSTS and chat_id in self.flood_limits:
                self.flood_limits[chat_id].check()
            self._maybe_fail(method, params)
            handler = getattr(self, f"_m_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            result = handler(params)
            if asyncio.iscoroutine(result):
                result = await result
        except ApiError as error:
            return self._error(error)
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _error(error: ApiError) -> web.Response:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": error.status,
            "description": error.description,
        }
        if error.retry_after is not None:
            body["parameters"] = {"retry_after": error.retry_after}
        return web.json_response(body, status=error.status)

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return dict(await request.json())
        params: dict[str, Any] = {}
        for key, value in (await request.post()).items():
            if isinstance(value, str) and value[:1] in "[{":
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            params[key] = value
        return params

    def _maybe_fail(self, method: str, params: dict[str, Any]) -> None:
        chat_id = _int_or_none(params.get("chat_id"))
        for failure in self.failures:
            matches = failure.chat_id is None or failure.chat_id == chat_id
            if failure.method == method and failure.times > 0 and matches:
                failure.times -= 1
                raise ApiError(failure.status, failure.description, failure.retry_after)

    def _chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = _int_or_none(params.get("chat_id"))
        if chat_id is None or chat_id not in self.chats:
            raise ApiError(400, "Bad Request: chat not found")
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        chat = self.chats[chat_id]
        status = self.members.get((chat_id, BOT_ID), "left")
        if chat["type"] != "private" and status == "kicked":
            raise ApiError(403, "Forbidden: bot was kicked from the supergroup chat")
        if chat["type"] != "private" and status == "left":
            raise ApiError(403, "Forbidden: bot is not a member of the supergroup chat")
        return chat

    def _check_markup(self, markup: Any) -> None:
        if not markup:
            return
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and len(data.encode()) > MAX_CALLBACK_DATA:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")

    def _text(self, params: dict[str, Any], key: str = "text") -> str:
        raw = params.get(key)
        if not raw:
            raise ApiError(400, "Bad Request: message text is empty")
        plain = plain_text(str(raw), params.get("parse_mode"))
        if len(plain) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        return plain

    def _new_message(self, chat: dict[str, Any], **fields: Any) -> dict[str, Any]:
        if not (fields.get("reply_markup") or {}).get("inline_keyboard"):
            fields.pop("reply_markup", None)  # Telegram echoes inline keyboards only
        message = {
            "message_id": self.next_message_id(chat["id"]),
            "date": int(time.time()),
            "chat": chat,
            "from": self.bot_user,
            **{k: v for k, v in fields.items() if v is not None},
        }
        self.messages[(chat["id"], message["message_id"])] = message
        return message

    # --- Bot API methods -------------------------------------------------------------------

    def _m_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False}

    def _m_setMyCommands(self, params: dict[str, Any]) -> bool:
        scope = (params.get("scope") or {}).get("type", "default")
        self.commands[(scope, params.get("language_code", ""))] = params["commands"]
        return True

    def _m_setChatMenuButton(self, params: dict[str, Any]) -> bool:
        chat_id = _int_or_none(params.get("chat_id"))
        if chat_id is None:
            raise ApiError(400, "Bad Request: the default menu button is not changed in tests")
        if chat_id not in self.chats:
            raise ApiError(400, "Bad Request: chat not found")
        button = params.get("menu_button") or {"type": "default"}
        self.menu_buttons[chat_id] = None if button.get("type") == "default" else button
        return True

    def _m_setMyDescription(self, params: dict[str, Any]) -> bool:
        return self._describe(params, "description", 512)

    def _m_setMyShortDescription(self, params: dict[str, Any]) -> bool:
        return self._describe(params, "short_description", 120)

    def _describe(self, params: dict[str, Any], field: str, limit: int) -> bool:
        text = str(params.get(field) or "")
        if len(text) > limit:
            raise ApiError(400, f"Bad Request: {field} is too long")
        self.descriptions.setdefault(str(params.get("language_code") or ""), {})[field] = text
        return True

    def _m_deleteWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = None
        return True

    def _m_setWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = params
        return True

    def _m_getChatMember(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = _int_or_none(params.get("chat_id"))
        if chat_id not in self.chats:
            raise ApiError(400, "Bad Request: chat not found")
        user_id = int(params["user_id"])
        status = self.members.get((chat_id, user_id), "left")
        user = (
            self.bot_user
            if user_id == BOT_ID
            else {"id": user_id, "is_bot": False, "first_name": "U"}
        )
        return _member(status, user) | self.rights.get((chat_id, user_id), {})

    def _m_getChat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = _int_or_none(params.get("chat_id"))
        if chat_id not in self.chats:
            raise ApiError(400, "Bad Request: chat not found")
        required = {
            name: 0
            for name, info in ChatFullInfo.model_fields.items()
            if info.is_required() and info.annotation is int
        }
        info = {**required, **self.chats[chat_id]}
        if "accepted_gift_types" in ChatFullInfo.model_fields:
            info["accepted_gift_types"] = _required_flags(AcceptedGiftTypes)
        return info

    def _m_createForumTopic(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        if not chat.get("is_forum"):
            raise ApiError(400, "Bad Request: the chat is not a forum")
        thread_id = next(self._ids)
        self.topics[(chat["id"], thread_id)] = str(params["name"])
        return {"message_thread_id": thread_id, "name": params["name"], "icon_color": 7322096}

    def _m_deleteForumTopic(self, params: dict[str, Any]) -> bool:
        chat = self._chat(params)
        if self.topics.pop((chat["id"], int(params["message_thread_id"])), None) is None:
            raise ApiError(400, "Bad Request: TOPIC_ID_INVALID")
        return True

    def _m_getChatAdministrators(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        chat_id = _int_or_none(params.get("chat_id"))
        if chat_id not in self.chats:
            raise ApiError(400, "Bad Request: chat not found")
        return [
            _member(status, {"id": user_id, "is_bot": user_id == BOT_ID, "first_name": "A"})
            for (cid, user_id), status in self.members.items()
            if cid == chat_id and status in {"creator", "administrator"}
        ]

    def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        plain = self._text(params)
        markup = params.get("reply_markup")
        self._check_markup(markup)
        message = self._new_message(
            chat,
            text=plain,
            reply_markup=markup,
            message_thread_id=_int_or_none(params.get("message_thread_id")),
        )
        reply = params.get("reply_parameters") or {}
        if isinstance(reply, dict) and reply.get("message_id"):
            target = self.messages.get((chat["id"], int(reply["message_id"])))
            if target is not None:
                message["reply_to_message"] = {
                    k: v for k, v in target.items() if k != "reply_to_message"
                }
        self.events.append(
            Event("message", chat["id"], message["message_id"], plain, markup, raw=params)
        )
        return message

    def _m_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        message = self._existing(chat["id"], params)
        if "text" not in message:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        plain = self._text(params)
        markup = params.get("reply_markup")
        self._check_markup(markup)
        if message.get("text") == plain and message.get("reply_markup") == markup:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        message["text"] = plain
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        self.events.append(
            Event("edit", chat["id"], message["message_id"], plain, markup, raw=params)
        )
        return message

    def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        message = self._existing(chat["id"], params)
        markup = params.get("reply_markup")
        self._check_markup(markup)
        if message.get("reply_markup") == markup:
            raise ApiError(400, "Bad Request: message is not modified")
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        self.events.append(
            Event(
                "edit",
                chat["id"],
                message["message_id"],
                message.get("text", ""),
                markup,
                raw=params,
            )
        )
        return message

    def _m_deleteMessage(self, params: dict[str, Any]) -> bool:
        chat = self._chat(params)
        message = self._existing(chat["id"], params)
        del self.messages[(chat["id"], message["message_id"])]
        self.events.append(Event("delete", chat["id"], message["message_id"], "", raw=params))
        return True

    def _m_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        self.events.append(
            Event(
                "answer",
                None,
                None,
                str(params.get("text", "")),
                show_alert=str(params.get("show_alert", "")).lower() == "true",
                callback_query_id=str(params["callback_query_id"]),
                raw=params,
            )
        )
        return True

    def _m_copyMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        source = self.messages.get((int(params["from_chat_id"]), int(params["message_id"])))
        if source is None:
            raise ApiError(400, "Bad Request: message to copy not found")
        if source.get("has_protected_content"):
            raise ApiError(400, "Bad Request: message can't be copied")
        fields = {k: v for k, v in source.items() if k in {"text", "caption", "photo", "document"}}
        if "caption" in params and "text" not in fields:
            fields["caption"] = plain_text(str(params["caption"]), params.get("parse_mode"))
            if len(fields["caption"]) > MAX_CAPTION:
                raise ApiError(400, "Bad Request: message caption is too long")
        copied = self._new_message(
            chat,
            **fields,
            reply_markup=params.get("reply_markup"),
            message_thread_id=_int_or_none(params.get("message_thread_id")),
        )
        reply = params.get("reply_parameters") or {}
        if isinstance(reply, dict) and reply.get("message_id"):
            target = self.messages.get((chat["id"], int(reply["message_id"])))
            if target is not None:
                copied["reply_to_message"] = {
                    k: v for k, v in target.items() if k != "reply_to_message"
                }
        text = copied.get("text") or copied.get("caption") or ""
        self.events.append(Event("copy", chat["id"], copied["message_id"], text, raw=params))
        return {"message_id": copied["message_id"]}

    def _m_editMessageCaption(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        message = self._existing(chat["id"], params)
        if "text" in message:
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        message["caption"] = plain_text(str(params.get("caption", "")), params.get("parse_mode"))
        self.events.append(
            Event("edit", chat["id"], message["message_id"], message["caption"], raw=params)
        )
        return message

    def _m_sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._upload(params, "document")

    def _m_sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._upload(params, "photo")

    def _upload(self, params: dict[str, Any], kind: str) -> dict[str, Any]:
        """sendDocument and sendPhoto with an uploaded file; the event keeps its bytes."""
        chat = self._chat(params)
        upload = params.get(kind)
        if isinstance(upload, str) and upload.startswith("attach://"):
            upload = params.get(upload.removeprefix("attach://"))
        content = b""
        name = "file"
        if hasattr(upload, "file"):
            content = upload.file.read()
            name = upload.filename
        caption = plain_text(str(params.get("caption", "")), params.get("parse_mode"))
        if len(caption) > MAX_CAPTION:
            raise ApiError(400, "Bad Request: message caption is too long")
        file_id = f"{kind}{len(self.events)}"
        media: Any = {"file_id": file_id, "file_unique_id": "u", "file_name": name}
        if kind == "photo":
            media = [{"file_id": file_id, "file_unique_id": "u", "width": 800, "height": 450}]
        message = self._new_message(chat, caption=caption or None, **{kind: media})
        self.events.append(
            Event(
                kind,
                chat["id"],
                message["message_id"],
                caption,
                raw={**params, "content": content, "file_name": name},
            )
        )
        return message

    async def _m_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        if offset < 0:  # as Telegram: the last -offset updates; all before them are forgotten
            self._updates = self._updates[offset:]
            return list(self._updates)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates:
            self._new_update.clear()
            timeout = min(float(params.get("timeout") or 0), 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), timeout)
        return list(self._updates)

    def _existing(self, chat_id: int, params: dict[str, Any]) -> dict[str, Any]:
        message = self.messages.get((chat_id, int(params.get("message_id", 0))))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        return message


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _required_flags(model: type[Any]) -> dict[str, bool]:
    """Every required boolean of an aiogram ChatMember model, so new API fields do not break us."""
    return {
        name: False
        for name, info in model.model_fields.items()
        if info.is_required() and info.annotation is bool
    }


def _member(status: str, user: dict[str, Any]) -> dict[str, Any]:
    member: dict[str, Any] = {"status": status, "user": user}
    if status == "administrator":
        member |= _required_flags(ChatMemberAdministrator) | {
            "can_manage_chat": True,
            "can_delete_messages": True,
            "can_restrict_members": True,
            "can_invite_users": True,
            "can_manage_topics": True,
        }
    elif status == "restricted":
        member |= _required_flags(ChatMemberRestricted) | {"is_member": True, "until_date": 0}
    elif status == "creator":
        member |= {"is_anonymous": False}
    elif status == "kicked":
        member |= {"until_date": 0}
    return member
