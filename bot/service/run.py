"""The run loop: long polling, or webhook mode with WEBHOOK_URL (and /healthz, /metrics on
WEBHOOK_LISTEN, also the webhook systems' callbacks), until the process is stopped; then
everything closes in order."""

from __future__ import annotations

import asyncio
import logging

from bot.core.policy import PolicyPack
from bot.service import web
from bot.service.app import build_app, create_bot
from bot.service.config import Settings
from bot.service.startup import prepare, prepare_beside

log = logging.getLogger(__name__)


async def run(settings: Settings, pack: PolicyPack) -> None:
    """Long polling by default; webhook mode with WEBHOOK_URL. /healthz and /metrics are served
    on WEBHOOK_LISTEN in webhook mode, and in polling mode too when it is set or when a webhook
    system is connected (its callbacks; WEBHOOK_LISTEN's default then)."""
    bot = create_bot(settings)
    try:
        # Before anything else (migrations, workers): an unreachable API or a rejected token
        # ends the start with one line (see bot.__main__).
        await bot.me()
    except BaseException:
        await bot.session.close()
        raise
    try:
        app = await build_app(settings, pack, bot=bot)
    except BaseException:  # a configuration error (a key, a system that does not validate)
        await bot.session.close()
        raise
    server = None
    beside: asyncio.Task[None] | None = None
    try:
        if settings.webhook_url is not None:
            await prepare(app)
        else:
            beside = asyncio.create_task(prepare_beside(app), name="prepare")
        # The webhook systems call back on the web server, and the desk app is served there:
        # it runs in polling mode too then.
        serving = settings.webhook_listen is not None or settings.webapp_url is not None
        if serving or app.callbacks is not None:
            server = await web.start_server(app, *settings.webhook_host_port)
        if settings.webhook_url is not None:
            await web.set_webhook(app)
            await web.until_stopped()
        else:
            await app.dispatcher.start_polling(
                app.bot, allowed_updates=app.dispatcher.resolve_used_update_types()
            )
    finally:
        if beside is not None:
            beside.cancel()
            await asyncio.gather(beside, return_exceptions=True)
        if server is not None:
            await server.cleanup()
        await app.close()
