"""`python -m bot`: read settings and the policy pack, then run the bot (long polling).

`python -m bot setup` writes a first configuration (README, "Quick start"); `python -m bot backup
PATH`, `python -m bot restore [PATH]` and `python -m bot rotate-key` are the operator's commands for
backups and the master key (README, "Encryption at rest"); `python -m bot systems check|demo` checks
the pack's systems against the databases and services (README, "Your systems"); `python -m bot
verify` walks the evidence chain (README, "Proof")."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

from bot.core.errors import ConfigError
from bot.core.packs import load_pack
from bot.service import maintenance, setup, systems_cli, verify
from bot.service.config import Settings, check_writable, load_settings
from bot.service.logs import setup_logging, system_secrets
from bot.service.run import run

EXIT_CONFIG = 2
USAGE = (
    "Usage: python -m bot [setup [--help] | backup PATH | restore [PATH] | rotate-key | "
    "systems check [--user ID] | systems demo --system ID --url URL | "
    "verify [--database-url URL]]"
)


def _operator_command(settings: Settings, argv: list[str]) -> str:
    match argv:
        case ["backup", path]:
            return maintenance.backup(settings, Path(path))
        case ["restore", *path] if len(path) <= 1:
            source = Path(path[0]) if path else None
            return asyncio.run(maintenance.restore(settings, source))
        case ["rotate-key"]:
            return asyncio.run(maintenance.rotate_key(settings))
    raise ConfigError(USAGE)


def main(argv: list[str] | None = None) -> int:
    argv = argv or []
    if argv[:1] == ["setup"]:  # before the settings: it is what writes them
        return setup.main(argv[1:])
    if argv[:1] == ["systems"]:  # reads the settings itself (`demo` may need none)
        return systems_cli.main(argv[1:])
    if argv[:1] == ["verify"]:  # reads the settings itself; exit 1 when the chain is broken
        return verify.main(argv[1:])
    try:
        settings = load_settings()
        if argv:
            print(_operator_command(settings, argv))
            return 0
        check_writable(settings)
        pack = load_pack(settings.policy_pack)
        asyncio.run(maintenance.check_key(settings))
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(settings.log_level, settings.secrets() + system_secrets(pack.systems, os.environ))
    try:
        asyncio.run(run(settings, pack))
    except ConfigError as error:  # e.g. DATA_KEY does not open the stored data keys
        print(error, file=sys.stderr)
        return EXIT_CONFIG
    except TelegramUnauthorizedError:
        print("Configuration error: BOT_TOKEN was rejected by the Bot API (401)", file=sys.stderr)
        return EXIT_CONFIG
    except TelegramNetworkError as error:
        # aiohttp's message may carry the request URL, and with it `bot<TOKEN>`.
        reason = error.message.replace(settings.bot_token.get_secret_value(), "<token>")
        print(f"Cannot reach the Bot API at {settings.telegram_api_url}: {reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
