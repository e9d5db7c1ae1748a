"""The desk app's routes on the bot's web server, all under /desk/: the page (`static/`,
index.html at /desk/) and the JSON API (/desk/api/...). Registered by
`bot.service.web.create_web_app` when WEBAPP_URL is set.

Every response under /desk/ carries the security headers: a Content-Security-Policy without
inline scripts or styles that lets only Telegram frame the page, no caching, no sniffing, no
referrer. No cookie is ever set: the signed init data rides in a header on every call, so a
forged cross-site request has nothing to ride on. URLs carry IDs only; logs carry no data."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from bot.service.desk_app import api_requests
from bot.service.desk_app.call import json_error

if TYPE_CHECKING:
    from bot.service.app import App

log = logging.getLogger(__name__)

PREFIX = "/desk"
STATIC = Path(__file__).resolve().parent / "static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors https://web.telegram.org https://*.telegram.org"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# --- the page ------------------------------------------------------------------------------


async def _index(_: web.Request) -> web.StreamResponse:
    return _file(STATIC / "index.html")


async def _to_index(_: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(f"{PREFIX}/")


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if "/" in name or "\\" in name or name.startswith("."):
        raise web.HTTPNotFound()
    return _file(STATIC / name)


def _file(path: Path) -> web.StreamResponse:
    kind = CONTENT_TYPES.get(path.suffix)
    if kind is None or not path.is_file():
        raise web.HTTPNotFound()
    return web.Response(body=path.read_bytes(), headers={"Content-Type": kind})


async def _secure(request: web.Request, response: web.StreamResponse) -> None:
    """The security headers on every answer under /desk/ (errors too); never a cookie."""
    if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
        response.headers.update(SECURITY_HEADERS)
        response.headers.popall("Set-Cookie", None)


def add_desk_routes(web_app: web.Application, app: App) -> None:
    """Everything under /desk/ (the API's handlers: `api_requests`)."""
    web_app.on_response_prepare.append(_secure)
    router = web_app.router
    router.add_get(PREFIX, _to_index)
    router.add_get(f"{PREFIX}/", _index)
    router.add_get(PREFIX + "/static/{name}", _static)
    api_requests.add_routes(router, app)
    router.add_route("*", PREFIX + "/api/{tail:.*}", _unknown)


async def _unknown(_: web.Request) -> web.StreamResponse:
    return json_error(404, "not_found")
