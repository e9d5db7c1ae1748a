"""One call of the desk app's JSON API: `api()` makes a handler taking a `Call` (the app, the
HTTP request, one database session's repositories, the checked init data, the staff language)
into an aiohttp handler: 401 for missing, forged or expired init data (nothing read), 403 from
`Call.check` (the card's staff check, audited), 400 for a bad query or body, one commit at the
end, a rollback on an error (logged by its type only: a message could carry data)."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiogram.utils.web_app import WebAppInitData
from aiohttp import web

from bot.core.i18n import Translator, catalog, translator
from bot.core.roles import Need
from bot.domain.desk_view import BadQuery
from bot.domain.requests.desk import Desk
from bot.service.desk_app.auth import Caller, Refused, check, init_data
from storage.crypto import reset_ring, use_ring
from storage.models import Request
from storage.repositories import Repositories
from storage.sealing import ring_of

if TYPE_CHECKING:
    from bot.service.app import App

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # an action's body: a reason, a date, IDs


class BadInput(Exception):
    """The call's input does not do: 400 with `code` and the staff-language `message`."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.message = message


@dataclass
class Call:
    """One API call: what a handler works with."""

    app: App
    request: web.Request
    repo: Repositories
    data: WebAppInitData
    t: Translator

    @property
    def user_id(self) -> int:
        assert self.data.user is not None
        return self.data.user.id

    async def check(
        self, action: str, subject: str | None = None, need: Need | None = None
    ) -> Caller:
        """The card's staff check (audited); Refused(403) when refused."""
        return await check(self.app, self.data, self.repo, action, subject, need)

    def desk(self) -> Desk:
        """The card's domain service, over this call's session."""
        return Desk(self.repo, self.app.clock, self.app.pack, self.app.registry.connected)

    async def load(self, number: int) -> Request:
        """Request `number`; 404 when there is none (erased, or never was)."""
        request = await self.repo.requests.get(number)
        if request is None:
            raise web.HTTPNotFound(text='{"error": "not_found"}', content_type="application/json")
        return request

    async def body(self, limit: int = MAX_BODY) -> dict[str, Any]:
        """The JSON object posted; BadInput when it is not one or is too big."""
        if (self.request.content_length or 0) > limit:
            raise BadInput("too_big")
        raw = await self.request.read()
        if len(raw) > limit:
            raise BadInput("too_big")
        try:
            value = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise BadInput("not_json") from None
        if not isinstance(value, dict):
            raise BadInput("not_json")
        return value


Handler = Callable[[Call], Awaitable[dict[str, Any] | web.StreamResponse]]


def _json(status: int, payload: dict[str, Any]) -> web.Response:
    return web.json_response(payload, status=status)


def json_error(status: int, code: str) -> web.Response:
    return _json(status, {"error": code})


def api(app: App, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler around `handler`: the init data checked first (401, nothing read),
    one session for the call (its data keys unwrapped for it alone), one commit at the end."""
    settings = app.settings
    token = settings.bot_token.get_secret_value()

    async def serve(request: web.Request) -> web.StreamResponse:
        now = app.clock.now()
        try:
            data = init_data(request, token, settings.webapp_max_age, now.timestamp())
        except Refused as refused:
            return _json(refused.status, {"error": refused.reason})
        app.pack.advance(now)  # an announced version's day: it applies at once
        t = translator(settings.staff_locale)
        async with app.sessions() as session:
            ring = use_ring(ring_of(session))
            repo = Repositories(session)
            try:
                answer = await handler(Call(app, request, repo, data, t))
                await repo.commit()
            except Refused as refused:
                await session.rollback()
                return _json(refused.status, {"error": refused.reason})
            except BadQuery as bad:
                await session.rollback()
                return _json(400, {"error": "bad_query", "field": str(bad)})
            except BadInput as bad:
                await session.rollback()
                return _json(400, {"error": bad.code, "message": bad.message})
            except web.HTTPException:
                await session.rollback()
                raise
            except Exception as error:
                await session.rollback()
                # The type and where only: a message could carry what was read or typed.
                where = traceback.extract_tb(error.__traceback__)[-1]
                log.error(
                    "Desk app: %s %s failed (%s at %s:%s)",
                    request.method,
                    request.match_info.route.resource,
                    type(error).__name__,
                    where.filename.rsplit("/", 1)[-1],
                    where.lineno,
                )
                return _json(500, {"error": "internal"})
            finally:
                reset_ring(ring)
        if isinstance(answer, web.StreamResponse):
            return answer
        return _json(200, answer)

    return serve


def app_texts(locale: str) -> dict[str, str]:
    """The page's own strings: every key of the sections whose name starts with `desk`, keyed
    `section.name` (the page substitutes `{name}` placeholders itself)."""
    fallback = catalog("ru") if locale != "ru" else {}
    texts = {k: v for k, v in fallback.items() if k.startswith("desk")}
    texts.update({k: v for k, v in catalog(locale).items() if k.startswith("desk")})
    return texts
