"""The desk app's person, breach register, figures and external-request handlers.

Each view is a plain async function of (the app, the checked staff member's ID, parameters)
returning a dict, so it is testable without HTTP; `add_routes` puts them under /desk/api/
behind the server's check (`call.api`: the init data; `Call.check`: the card's staff role
check, its audit row written by StaffDirectory.check). Needs: a person and the breach
register are a DPO's (the consent ledger and breaches are, as in the group); figures and
registering a request are desk work (DPO or agent)."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from aiogram import Bot
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
from bot.service.desk_app import call as call_errors
from bot.service.desk_app.call import Call, api
from storage.enums import AttachmentStatus
from storage.repositories import Repositories

if TYPE_CHECKING:
    from bot.service.app import App

log = logging.getLogger(__name__)

MAX_SCAN = 5 * 1024 * 1024  # bytes of the decoded scan
MAX_BODY = MAX_SCAN * 4 // 3 + 64 * 1024  # its base64 and the form's fields
SCAN_SUFFIXES = frozenset({".pdf", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".heic"})


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
    except Exception as error:  # the request stands: staff are told to post the scan
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


async def _read_body(call: Call) -> dict[str, Any]:
    """The JSON body, read here in chunks with the scan's own limit (the web app's
    `client_max_size` is the webhook's, far smaller)."""
    request = call.request
    if (request.content_length or 0) > MAX_BODY:
        raise call_errors.BadInput("too_big", call.t("desk_views.error_too_large"))
    chunks, size = [], 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY:
            raise call_errors.BadInput("too_big", call.t("desk_views.error_too_large"))
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks) or b"{}")
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise call_errors.BadInput("not_json", call.t("desk_views.error_json"))
    return body


def _bad(call: Call, code: str) -> call_errors.BadInput:
    return call_errors.BadInput(code, call.t(f"desk_views.error_{code}"))


async def people(call: Call) -> dict[str, Any]:
    """A person's data: a DPO's view, audited as `desk.person` with the user ID as subject."""
    word = call.request.match_info["user_id"]
    await call.check("desk.person", word, Need.DPO)
    try:
        return await person_view(call.app, call.user_id, int(word))
    except NotFound:
        body = json.dumps({"error": "not_found", "message": call.t("desk_views.error_not_found")})
        raise web.HTTPNotFound(text=body, content_type="application/json") from None


async def breaches(call: Call) -> dict[str, Any]:
    await call.check("desk.breaches", None, Need.DPO)
    return await breaches_view(call.app, call.user_id)


async def figures(call: Call) -> dict[str, Any]:
    await call.check("desk.figures", None, Need.DESK)
    try:
        return await figures_view(call.app, call.user_id, call.request.query.get("period", ""))
    except BadInput:
        raise _bad(call, "period") from None


async def external(call: Call) -> dict[str, Any]:
    """Register a request that came outside the bot (DPO or agent); the check is audited as
    `desk.external`, the request itself as `request.register_external` with its number."""
    await call.check("desk.external", None, Need.DESK)
    body = await _read_body(call)
    try:
        return await register_external(call.app, call.user_id, body)
    except BadInput as problem:
        raise _bad(call, f"invalid_{problem.field}") from None


def add_routes(router: web.UrlDispatcher, app: App) -> None:
    """GET /desk/api/people/{user_id}, /desk/api/breaches, /desk/api/figures and
    POST /desk/api/external, each behind the init-data check (`call.api`)."""
    router.add_get(r"/desk/api/people/{user_id:\d{1,19}}", api(app, people))
    router.add_get("/desk/api/breaches", api(app, breaches))
    router.add_get("/desk/api/figures", api(app, figures))
    router.add_post("/desk/api/external", api(app, external))
