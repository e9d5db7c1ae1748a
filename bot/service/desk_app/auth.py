"""Who is calling the desk app: Telegram's init data, sent by the page in the
`X-Telegram-Init-Data` header (the raw `tgWebAppData` query string), checked with the bot's
token (HMAC, as Telegram documents; aiogram's `safe_parse_webapp_init_data`) and no older than
WEBAPP_MAX_AGE; then the staff role, checked and audited exactly as the card's buttons are.

401: missing, forged or expired data. 403: not staff, or a role without the need. Nothing of
the data (a name, the hash) is ever logged."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from aiogram.utils.web_app import WebAppInitData, safe_parse_webapp_init_data
from aiohttp import web

from bot.core.roles import Need, Role
from bot.domain.staff import Decision
from storage.repositories import Repositories

if TYPE_CHECKING:
    from bot.service.app import App

log = logging.getLogger(__name__)

HEADER = "X-Telegram-Init-Data"
MAX_INIT_DATA = 8192  # aiohttp's own limit for a header line is about this
# Signed a little ahead of our clock (clocks differ): accepted within this.
CLOCK_SKEW = timedelta(minutes=5)


class Refused(Exception):
    """The call is refused: `status` 401 or 403, `reason` for the JSON answer (no data)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Caller:
    """The staff member calling, as Telegram vouches for them, and their role."""

    id: int
    name: str
    role: Role
    start_param: str | None


def init_data(request: web.Request, token: str, max_age: int, now_ts: float) -> WebAppInitData:
    """The checked init data of the call; Refused(401) when missing, forged or too old."""
    raw = request.headers.get(HEADER, "")
    if not raw or len(raw) > MAX_INIT_DATA:
        raise Refused(401, "missing")
    try:
        data = safe_parse_webapp_init_data(token, raw)
    except (ValueError, TypeError):
        log.info("Desk app: init data refused (bad signature)")
        raise Refused(401, "forged") from None
    if data.user is None:
        raise Refused(401, "forged")
    age = now_ts - data.auth_date.timestamp()
    if age > max_age or age < -CLOCK_SKEW.total_seconds():
        log.info("Desk app: init data refused (expired) for user %s", data.user.id)
        raise Refused(401, "expired")
    return data


async def check(
    app: App,
    data: WebAppInitData,
    repo: Repositories,
    action: str,
    subject: str | None,
    need: Need | None = None,
) -> Caller:
    """The card's staff check for `action` on `subject` (audited); Refused(403) if refused."""
    assert data.user is not None
    user_id = data.user.id
    decision: Decision = await app.staff.check(app.bot, user_id, action, subject, repo, need)
    if not decision or decision.role is None:
        raise Refused(403, "not_staff" if decision.role is None else "role")
    name = " ".join(n for n in (data.user.first_name, data.user.last_name) if n)
    return Caller(user_id, name, decision.role, data.start_param)
