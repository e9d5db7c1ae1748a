"""Shared parts of the desk app's browser tests: the system Chromium through Playwright, the
page's URL as Telegram opens it, Telegram's two themes, screenshots, and a canned API that
answers per the contract (for the views whose data needs no bot: the page's own behaviour)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

CHROMIUM = os.environ.get("DESK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
STATIC = Path(__file__).parent.parent / "bot" / "service" / "desk_app" / "static"

# Telegram's own light and dark theme parameters (what tgWebAppThemeParams carries).
THEMES: dict[str, dict[str, str]] = {
    "light": {
        "bg_color": "#ffffff",
        "text_color": "#000000",
        "hint_color": "#999999",
        "link_color": "#2481cc",
        "button_color": "#2481cc",
        "button_text_color": "#ffffff",
        "secondary_bg_color": "#efeff3",
    },
    "dark": {
        "bg_color": "#212121",
        "text_color": "#ffffff",
        "hint_color": "#aaaaaa",
        "link_color": "#8774e1",
        "button_color": "#8774e1",
        "button_text_color": "#ffffff",
        "secondary_bg_color": "#0f0f0f",
    },
}

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors https://web.telegram.org https://*.telegram.org"
)


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[dev]')"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)"
    return None


def desk_url(base: str, init_data: str, theme: str = "light", start: str | None = None) -> str:
    """The page's URL as Telegram opens a Mini App: the launch data in the fragment."""
    fragment = f"tgWebAppData={quote(init_data, safe='')}&tgWebAppVersion=8.0"
    fragment += f"&tgWebAppPlatform=tdesktop&tgWebAppThemeParams={quote(json.dumps(THEMES[theme]))}"
    if start:
        fragment += f"&tgWebAppStartParam={start}"
    return f"{base}/desk/#{fragment}"


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A fresh headless system Chromium at a phone's width; CSP violations and script errors
    are collected in `page.problems` (a test fails on any)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            context = await browser.new_context(viewport={"width": 360, "height": 740})
            page = await context.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
            page.on(
                "console",
                lambda msg: (
                    problems.append(msg.text)
                    if msg.type == "error" and "Content Security Policy" in msg.text
                    else None
                ),
            )
            page.problems = problems  # type: ignore[attr-defined]
            yield page
        finally:
            await browser.close()


def screenshots_dir(fallback: Path) -> Path:
    """Where the tests write their screenshots: DESK_SCREENSHOTS if set, else a temp folder."""
    folder = Path(os.environ.get("DESK_SCREENSHOTS") or fallback)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def shoot(page: Any, folder: Path, name: str) -> None:
    await page.screenshot(path=str(folder / f"desk-{name}.png"), full_page=True)


@web.middleware
async def security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def static_routes(app: web.Application) -> None:
    async def index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    app.router.add_get("/desk/", index)
    app.router.add_static("/desk/static/", STATIC)
