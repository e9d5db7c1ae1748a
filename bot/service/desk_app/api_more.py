"""The desk app's person, breach register, figures and external-request handlers.

Each view is a plain async function of (the app, the checked staff member's ID, parameters)
returning a dict, so it is testable without HTTP; `register_more_routes` puts them under
/desk/api/ behind the server's `authorised` check (the init data and the staff role, the
audit row written by StaffDirectory.check). Needs: a person and the breach register are a
DPO's (the consent ledger and breaches are, as in the group); figures and registering a
request are desk work (DPO or agent)."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import PurePosixPath
from typing import Any, Protocol

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BufferedInputFile
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import Clock
from bot.core.i18n import Translator, translator
from bot.core.policy import PolicyPack
from bot.core.roles import Need
from bot.domain import desk_more
from bot.domain.admin_chat import AdminChat
from bot.domain.attachments import AttachmentKind
from bot.domain.stats import parse_period
from storage.enums import AttachmentStatus
from storage.repositories import Repositories

log = logging.getLogger(__name__)

MAX_SCAN = 5 * 1024 * 1024  # bytes of the decoded scan
MAX_BODY = MAX_SCAN * 4 // 3 + 64 * 1024  # its base64 and the form's fields
SCAN_SUFFIXES = frozenset({".pdf", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".heic"})

Authorised = Callable[[web.Request, str, str | None, Need], Awaitable[int]]


class DeskApp(Protocol):
    """What the handlers use of bot.service.app.App."""

    @property
    def settings(self) -> Any: ...
    @property
    def pack(self) -> PolicyPack: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]: ...
    @property
    def bot(self) -> Bot: ...
    @property
    def admin_chat(self) -> AdminChat: ...


class NotFound(LookupError):
    pass


class BadInput(ValueError):
    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def staff_t(app: DeskApp) -> Translator:
    return translator(app.settings.staff_locale)


async def person_view(app: DeskApp, staff_id: int, user_id: int) -> dict[str, Any]:
    async with app.sessions() as session:
        repo = Repositories(session)
        found = await desk_more.person(repo, app.pack, staff_t(app), user_id, app.clock.now())
    if found is None:
        raise NotFound(str(user_id))
    return found


async def breaches_view(app: DeskApp, staff_id: int) -> dict[str, Any]:
    async with app.sessions() as session:
        repo = Repositories(session)
        return await desk_more.breach_register(repo, app.pack, staff_t(app), app.clock.now())


async def figures_view(app: DeskApp, staff_id: int, period: str = "") -> dict[str, Any]:
    """`period` as /stats takes it: '' (6 months), '12m', '2026' or '2026-03'."""
    now = app.clock.now()
    found = parse_period(period, now, app.pack.zone)
    if found is None:
        raise BadInput("period")
    async with app.sessions() as session:
        repo = Repositories(session)
        return await desk_more.figures(repo, app.pack, staff_t(app), found, now)


def decode_scan(attachment: object) -> tuple[str, bytes] | None:
    """The scan's file suffix and bytes from {"name", "base64"}; BadInput when malformed,
    too large or not a document or picture type."""
    if attachment in (None, ""):
        return None
    if not isinstance(attachment, dict):
        raise BadInput("attachment")
    suffix = PurePosixPath(str(attachment.get("name") or "")).suffix.lower()
    if suffix not in SCAN_SUFFIXES:
        raise BadInput("attachment")
    encoded = str(attachment.get("base64") or "")
    if len(encoded) > MAX_SCAN * 4 // 3 + 4:
        raise BadInput("attachment_size")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("attachment") from None
    if not data:
        raise BadInput("attachment")
    if len(data) > MAX_SCAN:
        raise BadInput("attachment_size")
    return suffix, data


async def register_external(app: DeskApp, staff_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """A request staff register that came outside the bot: checked, filed with its number and
    card (its clock from the date received), audited as `request.register_external` in the
    same transaction; its scan, if any, posted to the admin group and kept as an attachment."""
    now, pack = app.clock.now(), app.pack
    try:
        external = desk_more.parse_external(body, pack, now.astimezone(pack.zone).date())
    except desk_more.Invalid as problem:
        raise BadInput(str(problem)) from None
    scan = decode_scan(body.get("attachment"))
    async with app.sessions() as session:
        repo = Repositories(session)
        request = await desk_more.register_external(repo, pack, external, now)
        await repo.audit.add(
            at=now,
            actor_id=staff_id,
            action="request.register_external",
            subject=f"request:{request.id}",
            allowed=True,
        )
        await repo.commit()
        number, linked = request.id, request.user_id is not None
    result: dict[str, Any] = {"id": number, "linked": linked}
    if scan is not None:
        result["attachment"] = await _post_scan(app, staff_id, number, *scan)
    return result


async def _post_scan(app: DeskApp, staff_id: int, number: int, suffix: str, data: bytes) -> str:
    """The scan as a document in the admin group (Telegram keeps the file; the database the
    message's place, type and size). 'ok', or 'failed' when Telegram refused it."""
    t = staff_t(app)
    caption = t("desk_views.scan_caption", id=number)
    upload = BufferedInputFile(data, filename=f"request-{number}{suffix}")
    try:
        sent = await app.bot.send_document(app.admin_chat.id, upload, caption=caption)
    except TelegramAPIError as error:
        log.warning("The scan of request %s was not posted: %s", number, type(error).__name__)
        return "failed"
    async with app.sessions() as session:
        repo = Repositories(session)
        attachment = await repo.attachments.add(
            request_id=number,
            at=app.clock.now(),
            author="staff",
            staff_id=staff_id,
            kind=AttachmentKind.DOCUMENT,
            size=len(data),
            source_chat_id=sent.chat.id,
            source_message_id=sent.message_id,
            copy_chat_id=sent.chat.id,
            copy_message_id=sent.message_id,
        )
        attachment.status = AttachmentStatus.RELAYED  # already where staff see it
        await repo.requests.link(sent.chat.id, sent.message_id, number)
        await repo.commit()
    return "ok"


# --- HTTP -------------------------------------------------------------------------------------


def _error(status: type[web.HTTPException], code: str, t: Translator) -> web.HTTPException:
    body = {"error": code, "message": t(f"desk_views.error_{code}")}
    return status(text=json.dumps(body, ensure_ascii=False), content_type="application/json")


def _too_large(t: Translator, size: int) -> web.HTTPException:
    body = {"error": "too_large", "message": t("desk_views.error_too_large")}
    return web.HTTPRequestEntityTooLarge(
        max_size=MAX_BODY,
        actual_size=size,
        text=json.dumps(body, ensure_ascii=False),
        content_type="application/json",
    )


def _json(data: dict[str, Any]) -> web.Response:
    return web.json_response(data, dumps=lambda v: json.dumps(v, ensure_ascii=False))


async def _read_body(request: web.Request, t: Translator) -> dict[str, Any]:
    """The JSON body, read here with the scan's own limit (whatever the server's default)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _too_large(t, request.content_length)
    chunks, size = [], 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY:
            raise _too_large(t, size)
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _error(web.HTTPBadRequest, "json", t) from None
    if not isinstance(body, dict):
        raise _error(web.HTTPBadRequest, "json", t)
    return body


def register_more_routes(web_app: web.Application, app: DeskApp, authorised: Authorised) -> None:
    """GET /desk/api/people/{user_id}, /desk/api/breaches, /desk/api/figures and
    POST /desk/api/external, each after `authorised` (401/403 raised there)."""

    async def people(request: web.Request) -> web.Response:
        t = staff_t(app)
        word = request.match_info["user_id"]
        if not word.isdigit() or len(word) > 19:
            raise _error(web.HTTPBadRequest, "user_id", t)
        staff_id = await authorised(request, "desk.person", word, Need.DPO)
        try:
            return _json(await person_view(app, staff_id, int(word)))
        except NotFound:
            raise _error(web.HTTPNotFound, "not_found", t) from None

    async def breaches(request: web.Request) -> web.Response:
        staff_id = await authorised(request, "desk.breaches", None, Need.DPO)
        return _json(await breaches_view(app, staff_id))

    async def figures(request: web.Request) -> web.Response:
        staff_id = await authorised(request, "desk.figures", None, Need.DESK)
        try:
            return _json(await figures_view(app, staff_id, request.query.get("period", "")))
        except BadInput:
            raise _error(web.HTTPBadRequest, "period", staff_t(app)) from None

    async def external(request: web.Request) -> web.Response:
        t = staff_t(app)
        staff_id = await authorised(request, "desk.external", None, Need.DESK)
        body = await _read_body(request, t)
        try:
            return _json(await register_external(app, staff_id, body))
        except BadInput as problem:
            raise _error(web.HTTPBadRequest, f"invalid_{problem.field}", t) from None

    web_app.router.add_get("/desk/api/people/{user_id}", people)
    web_app.router.add_get("/desk/api/breaches", breaches)
    web_app.router.add_get("/desk/api/figures", figures)
    web_app.router.add_post("/desk/api/external", external)
