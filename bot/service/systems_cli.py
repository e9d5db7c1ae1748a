"""`python -m bot systems check [--user ID [--phone +DIGITS]]` and `python -m bot systems demo
--system ID --url URL [--pack NAME] [--replace]`: the operator's commands for the pack's
`[[systems]]` (README, "Your systems").

`check` connects to each system whose environment variable is set, prints one line per problem
(a table or column the pack names that the database lacks, an identity column without an
index, an endpoint that does not answer) and "not connected" for a system whose variable is
unset; with `--user` it is a dry run: per table, what access would read and erasure would
change, changing nothing. Exit 0 when every connected system validates, 1 when one does not, 2
on a configuration error. Nothing printed carries a URL, a credential or a value of a row.

`demo` creates the demo database of a shipped pack's sql system (storage.external.demo) with
a few demo people, at the URL given.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from sqlalchemy.exc import ArgumentError, InvalidRequestError, NoSuchModuleError, SQLAlchemyError

from bot.core.errors import ConfigError
from bot.core.packs import load_pack
from bot.core.policy import PolicyPack
from bot.core.systems import System, SystemKind
from bot.delivery.systems.sql import SqlConnector
from bot.domain.systems import Connector, Subject
from bot.service.config import load_settings
from storage.external import describe_error, open_engine
from storage.external.demo import DEMOS, create_demo, existing_tables

EXIT_OK, EXIT_PROBLEMS, EXIT_CONFIG = 0, 1, 2
Print = Callable[[str], None]
_BAD_URL = (ArgumentError, NoSuchModuleError, InvalidRequestError, ImportError, ValueError)


def system_environment(env_file: Path = Path(".env")) -> dict[str, str]:
    """The variables the systems are reached through: the process environment over `.env`
    (the file the settings are read from)."""
    values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    return {**values, **os.environ}


def webhook_connector(system: System, url: str, secret: str, callback_url: str | None) -> Any:
    """The webhook connector, where bot/delivery/systems/webhook.py exists (None until then:
    its systems are reported "not checked"). Its `WebhookConnector(system, url, secret,
    callback_url).check()` says whether the endpoint answers."""
    try:
        from bot.delivery.systems.webhook import WebhookConnector  # type: ignore[import-not-found]
    except ImportError:
        return None
    return WebhookConnector(system, url, secret, callback_url)


def connector_for(
    system: System, env: Mapping[str, str], secret: str, callback_url: str | None
) -> Connector | str | None:
    """The system's connector; None when its variable is unset (not connected); a line when
    its configuration is wrong."""
    url = env.get(system.url_env or "") if system.url_env else None
    if not url:
        return None
    if system.kind is SystemKind.SQL:
        try:
            return SqlConnector(system, url, secret)
        except _BAD_URL as error:
            why = describe_error(error)
            return f"{system.id}: {system.url_env} is not a usable SQLAlchemy async URL ({why})"
    hook_secret = env.get(system.secret_env or "")
    if not hook_secret:
        return f"{system.id}: {system.secret_env} is not set"
    return webhook_connector(system, url, hook_secret, callback_url) or "not checked"


async def check_systems(
    pack: PolicyPack,
    env: Mapping[str, str],
    secret: str,
    say: Print,
    *,
    subject: Subject | None = None,
    callback_url: str | None = None,
) -> int:
    """Check (or dry-run for `subject`) each system of `pack`; the exit code."""
    worst = EXIT_OK
    if not pack.systems:
        say("The pack describes no systems ([[systems]]).")
    for system in pack.systems:
        label = f"{system.id} ({system.kind})"
        if system.kind is SystemKind.MANUAL:
            say(f"{label}: done by hand by staff")
            continue
        made = connector_for(system, env, secret, callback_url)
        if made is None:
            say(f"{label}: not connected ({system.url_env} is not set)")
            continue
        if made == "not checked":
            say(f"{label}: not checked (no webhook connector in this version)")
            continue
        if isinstance(made, str):
            say(made)
            worst = max(worst, EXIT_CONFIG)
            continue
        worst = max(worst, await _check_one(made, label, say, subject))
    return worst


async def _check_one(connector: Connector, label: str, say: Print, subject: Subject | None) -> int:
    try:
        problems = await connector.check()
        for line in problems:
            say(line)
        if problems:
            say(f"{label}: {len(problems)} problem(s)")
            return EXIT_PROBLEMS
        say(f"{label}: ok")
        if subject is not None and connector.system.kind is SystemKind.SQL:
            if subject.phone is None and _by_phone(connector.system):
                say(f"{label}: no --phone given: tables found by the phone match nothing")
            for line in await connector.dry_run(subject):
                say(line)
        return EXIT_OK
    finally:
        await connector.close()


def _by_phone(system: System) -> bool:
    return any(t.identity is not None and t.identity.kind == "phone" for t in system.tables)


async def make_demo(pack: PolicyPack, system_id: str, url: str, *, replace: bool) -> str:
    name = f"{pack.id}.{system_id}"
    if name not in DEMOS:
        shipped = ", ".join(sorted(DEMOS))
        raise ConfigError(f"No demo database for {name} (there is one for: {shipped})")
    try:
        engine = open_engine(url)
    except _BAD_URL as error:
        why = describe_error(error)
        raise ConfigError(f"--url is not a usable SQLAlchemy async URL ({why})") from None
    try:
        present = await existing_tables(engine, name)
        if present and not replace:
            raise ConfigError(
                f"The database already has {', '.join(present)}: add --replace to drop and "
                "recreate the demo tables"
            )
        people = await create_demo(engine, name, replace=replace)
    except (SQLAlchemyError, OSError) as error:
        raise ConfigError(f"Demo database not created: {describe_error(error)}") from None
    finally:
        await engine.dispose()
    return f"Demo database of {name} created: {people} demo people"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot systems")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="check each system against the pack")
    check.add_argument("--user", type=int, help="dry run for this Telegram user ID")
    check.add_argument("--phone", help="the user's verified phone, +<digits> (with --user)")
    demo = commands.add_parser("demo", help="create a shipped pack's demo database")
    demo.add_argument("--system", required=True)
    demo.add_argument("--url", required=True, help="SQLAlchemy async URL of the database")
    demo.add_argument("--pack", help="the pack (default: POLICY_PACK)")
    demo.add_argument("--replace", action="store_true", help="drop the demo tables first")
    return parser


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:
        return EXIT_CONFIG if exit_.code else EXIT_OK
    try:
        if args.command == "demo":
            pack = load_pack(args.pack or load_settings().policy_pack)
            print(asyncio.run(make_demo(pack, args.system, args.url, replace=args.replace)))
            return EXIT_OK
        settings = load_settings()
        pack = load_pack(settings.policy_pack)
        subject = None
        if args.user is not None:
            subject = Subject(telegram_id=args.user, phone=_phone(args.phone))
        return asyncio.run(
            check_systems(
                pack,
                system_environment(),
                settings.pseudonym_secret.get_secret_value(),
                print,
                subject=subject,
                callback_url=settings.webhook_url,
            )
        )
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG


def _phone(value: str | None) -> str | None:
    if value is None:
        return None
    digits = "".join(ch for ch in value if ch.isdigit())
    if not digits:
        raise ConfigError("--phone: give the phone as +<digits>")
    return f"+{digits}"
