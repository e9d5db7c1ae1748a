"""The HTTP side: Telegram's webhook (WEBHOOK_URL), GET /healthz and GET /metrics, and the
webhook systems' callbacks (POST /systems/{system_id}/callback, `bot.delivery.systems.callback`).

In webhook mode Telegram POSTs each update to the path of WEBHOOK_URL with WEBHOOK_SECRET in the
`X-Telegram-Bot-Api-Secret-Token` header; a request without it gets 401 and is not processed.
An update is answered only after it was handled, so an instance that dies mid-update leaves it
unacknowledged and Telegram delivers it again (to any instance behind the proxy)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Protocol
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.delivery.systems.callback import MAX_CALLBACK, WebhookCallbacks
from bot.delivery.systems.webhook import SIGNATURE_HEADER
from bot.service.config import Settings
from bot.service.metrics import Metrics

log = logging.getLogger(__name__)


class Served(Protocol):
    """What the web side serves: the settings (webhook URL and secret), the dispatcher and bot
    that handle a webhook's updates, the metrics behind /healthz and /metrics, and `callbacks`,
    the connected webhook systems' callbacks (None: there is none, every callback gets 404).
    `bot.service.app.App` is one; this module does not import it (the app imports this one)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def dispatcher(self) -> Dispatcher: ...

    @property
    def bot(self) -> Bot: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def callbacks(self) -> WebhookCallbacks | None: ...


def webhook_path(url: str) -> str:
    return urlsplit(url).path or "/"


def create_web_app(app: Served) -> web.Application:
    web_app = web.Application(client_max_size=MAX_CALLBACK)
    settings = app.settings
    if settings.webhook_url is not None:
        assert settings.webhook_secret is not None  # the settings require it
        SimpleRequestHandler(
            dispatcher=app.dispatcher,
            bot=app.bot,
            handle_in_background=False,
            secret_token=settings.webhook_secret.get_secret_value(),
        ).register(web_app, path=webhook_path(settings.webhook_url))

    async def healthz(_: web.Request) -> web.Response:
        health = await app.metrics.health()
        return web.Response(status=200 if health.ok else 503, text=health.reason + "\n")

    async def metrics(_: web.Request) -> web.Response:
        body = await app.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def system_callback(request: web.Request) -> web.Response:
        if app.callbacks is None:
            return web.Response(status=404, text="unknown system\n")
        if (request.content_length or 0) > MAX_CALLBACK:
            return web.Response(status=413, text="too big\n")
        body = await request.read()  # over client_max_size: 413
        answer = await app.callbacks.receive(
            request.match_info["system_id"], body, request.headers.get(SIGNATURE_HEADER)
        )
        return web.Response(status=answer.status, text=answer.text + "\n")

    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_post("/systems/{system_id}/callback", system_callback)
    web_app.router.add_get("/metrics", metrics)
    if settings.webapp_url is not None:
        from bot.service.desk_app.server import add_desk_routes

        add_desk_routes(web_app, app)  # type: ignore[arg-type]  # the App itself serves it
    return web_app


async def start_server(app: Served, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(create_web_app(app), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    desk = " and the desk app" if app.settings.webapp_url else ""
    log.info("Serving /healthz, /metrics, the systems' callbacks%s on %s:%s", desk, host, port)
    return runner


async def set_webhook(app: Served) -> None:
    settings = app.settings
    assert settings.webhook_url is not None and settings.webhook_secret is not None
    await app.bot.set_webhook(
        settings.webhook_url,
        secret_token=settings.webhook_secret.get_secret_value(),
        allowed_updates=app.dispatcher.resolve_used_update_types(),
        drop_pending_updates=False,
    )
    log.info(
        "Webhook mode: Telegram sends updates to the path %s", webhook_path(settings.webhook_url)
    )


async def until_stopped() -> None:
    """Wait for SIGTERM or SIGINT (docker stop, Ctrl+C) and return, for a graceful shutdown."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
