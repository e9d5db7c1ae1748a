"""Init data for the desk Mini App, signed as Telegram signs it (the HMAC the bot checks,
https://core.telegram.org/bots/webapps#validating-data-received-via-the-web-app): what the
page reads from `#tgWebAppData=...` and sends in the `X-Telegram-Init-Data` header."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

HEADER = "X-Telegram-Init-Data"


def signed_init_data(
    token: str,
    user: dict[str, Any],
    auth_date: datetime | int,
    start_param: str | None = None,
) -> str:
    """The raw `tgWebAppData` query string for `user` (id, first_name, ... as Telegram's User),
    signed with the bot's `token`; `auth_date` is when Telegram signed it."""
    when = auth_date if isinstance(auth_date, int) else int(auth_date.timestamp())
    fields: dict[str, str] = {
        "auth_date": str(when),
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": json.dumps(user, separators=(",", ":"), ensure_ascii=False),
    }
    if start_param is not None:
        fields["start_param"] = start_param
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    fields["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(fields)


def forged(init_data: str) -> str:
    """The same data with another user ID slipped in: its hash no longer matches."""
    return init_data.replace("%22id%22%3A", "%22id%22%3A9", 1)
