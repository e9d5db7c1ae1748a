"""`python -m bot`: read settings and the policy pack, then run the bot (long polling)."""

from __future__ import annotations

import asyncio
import sys

from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

from bot.app import run
from bot.config import ConfigError, load_settings
from bot.logs import setup_logging
from bot.policy import load_pack

EXIT_CONFIG = 2


def main() -> int:
    try:
        settings = load_settings()
        pack = load_pack(settings.policy_pack)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(settings.log_level, [settings.bot_token.get_secret_value()])
    try:
        asyncio.run(run(settings, pack))
    except TelegramUnauthorizedError:
        print("Configuration error: BOT_TOKEN was rejected by the Bot API (401)", file=sys.stderr)
        return EXIT_CONFIG
    except TelegramNetworkError as error:
        print(
            f"Cannot reach the Bot API at {settings.telegram_api_url}: {error.message}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
