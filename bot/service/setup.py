"""`python -m bot setup`: a first configuration in one command.

It checks the token with getMe, generates the pseudonym secret and the master key into files of
their own (mode 0600, outside the data folder), finds the staff group from the `my_chat_member`
update Telegram sends when the operator adds the bot there, checks the bot's rights in it, and
writes `.env`. Every answer can be given as a flag, so it runs without a terminal too. The
token and the key are never printed. The operator's texts are in English, like the other
operator commands (backup, restore, rotate-key)."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from getpass import getpass
from itertools import count
from pathlib import Path

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ChatMemberStatus
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramConflictError,
    TelegramNetworkError,
    TelegramUnauthorizedError,
)
from aiogram.types import ChatMemberUpdated, Update, User

from bot.core.errors import ConfigError
from bot.core.i18n import LOCALES
from bot.core.packs import shipped_packs
from bot.service.config import TELEGRAM_API, looks_like_token
from storage.crypto import KeyProblem, new_master_key, parse_master_key

DEFAULT_PACK = "by_99z_sports"
DEFAULT_LOCALE = "ru"
DEFAULT_WAIT = 600.0  # seconds to wait for the bot to be added to the staff group
KEY_FILE, SECRET_FILE = "data_key", "pseudonym_secret"
_IDS_RE = re.compile(r"^\d+(,\d+)*$")


class SetupError(Exception):
    """Setup cannot go on; str() is one line for the operator (exit code 2)."""


@dataclass
class Options:
    token: str | None = None
    group_id: int | None = None
    pack: str | None = None
    lang: str | None = None
    owner_ids: str | None = None
    env_file: Path = Path(".env")
    secrets_dir: Path | None = None  # default: secrets/ beside the .env file
    api_url: str = TELEGRAM_API
    wait: float = DEFAULT_WAIT
    force: bool = False
    interactive: bool = True


@dataclass
class Terminal:
    """Where setup talks to the operator; tests give scripted answers."""

    say: Callable[[str], None] = print
    ask: Callable[[str], str] = input
    ask_secret: Callable[[str], str] = getpass


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bot setup",
        description="Configure the bot: token, secrets, staff group, policy pack, language.",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("BOT_TOKEN"),
        help="the token from @BotFather (default: $BOT_TOKEN; else asked, not echoed)",
    )
    parser.add_argument("--group-id", type=int, help="the staff group's ID (else detected)")
    parser.add_argument("--pack", help=f"policy pack: {', '.join(shipped_packs())} or a file")
    parser.add_argument("--lang", choices=LOCALES, help="users' default language")
    parser.add_argument("--owner-ids", help="your own Telegram user ID(s), comma-separated")
    parser.add_argument("--env-file", type=Path, default=Path(".env"))
    parser.add_argument("--secrets-dir", type=Path, help="default: secrets/ beside .env")
    parser.add_argument("--api-url", default=os.environ.get("TELEGRAM_API_URL") or TELEGRAM_API)
    parser.add_argument("--wait", type=float, default=DEFAULT_WAIT, help="seconds (group)")
    parser.add_argument("--force", action="store_true", help="replace .env (kept aside)")
    parser.add_argument(
        "--yes", "--non-interactive", dest="yes", action="store_true", help="ask nothing"
    )
    args = parser.parse_args(argv)
    return Options(
        token=args.token,
        group_id=args.group_id,
        pack=args.pack,
        lang=args.lang,
        owner_ids=args.owner_ids,
        env_file=args.env_file,
        secrets_dir=args.secrets_dir,
        api_url=args.api_url.rstrip("/"),
        wait=args.wait,
        force=args.force,
        interactive=not args.yes and sys.stdin.isatty(),
    )


@dataclass
class Answers:
    token: str = ""
    me: User | None = None
    pack: str = DEFAULT_PACK
    lang: str = DEFAULT_LOCALE
    group_id: int = 0
    owner_ids: str = ""
    lines: list[str] = field(default_factory=list)  # the .env file


class Setup:
    def __init__(self, options: Options, term: Terminal) -> None:
        self.o, self.term, self.a = options, term, Answers()

    def _ask(self, prompt: str, default: str = "") -> str:
        if not self.o.interactive:
            return default
        answer = self.term.ask(f"{prompt} [{default}]: " if default else f"{prompt}: ").strip()
        return answer or default

    async def run(self) -> None:
        if self.o.env_file.exists() and not self.o.force:
            raise SetupError(f"{self.o.env_file} exists; use --force to overwrite it")
        secrets_dir = self._secrets_dir()
        self.a.token = self._token()
        bot = Bot(
            self.a.token, session=AiohttpSession(api=TelegramAPIServer.from_base(self.o.api_url))
        )
        try:
            await self._check_token(bot)
            self.a.pack = self._pack()
            self.a.lang = self._lang()
            self.a.group_id = self.o.group_id or await self._wait_for_group(bot)
            await self._check_rights(bot, self.a.group_id)
        except TelegramNetworkError as error:
            reason = error.message.replace(self.a.token, "<token>")
            raise SetupError(f"Cannot reach the Bot API at {self.o.api_url}: {reason}") from None
        except TelegramAPIError as error:  # a 5xx, a 429...: one line, not a traceback
            reason = error.message.replace(self.a.token, "<token>")
            raise SetupError(f"The Bot API refused a call ({reason}); try again later") from None
        finally:
            await bot.session.close()
        self.a.owner_ids = self._owner_ids()
        key_path, secret_path = self._write_secrets(secrets_dir)
        self._write_env(key_path, secret_path)
        self._farewell(key_path, secret_path)

    # --- the answers -------------------------------------------------------------------------

    def _token(self) -> str:
        token = self.o.token
        if token is None and self.o.interactive:
            self.term.say("Create a bot with @BotFather in Telegram (/newbot) and paste its token.")
            token = self.term.ask_secret("Bot token (not shown): ")
        if not token:
            raise SetupError("No token: give it with --token or run setup in a terminal")
        token = token.strip()
        if not looks_like_token(token):
            raise SetupError("The token does not look like one from @BotFather (digits:letters)")
        return token

    async def _check_token(self, bot: Bot) -> None:
        try:
            self.a.me = await bot.get_me()
        except TelegramUnauthorizedError:
            raise SetupError(
                "The Bot API rejected this token (401): check it with @BotFather"
            ) from None
        self.term.say(f"Token accepted: this is @{self.a.me.username}.")

    def _pack(self) -> str:
        packs = shipped_packs()
        if self.o.pack is None and self.o.interactive:
            self.term.say("Policy packs shipped: " + ", ".join(packs))
        pack = self.o.pack or self._ask("Policy pack", DEFAULT_PACK)
        if pack not in packs and not (pack.endswith(".toml") and Path(pack).is_file()):
            raise SetupError(f"Unknown policy pack {pack!r}: one of {', '.join(packs)} or a file")
        return pack

    def _lang(self) -> str:
        lang = self.o.lang or self._ask(f"Users' language ({', '.join(LOCALES)})", DEFAULT_LOCALE)
        if lang not in LOCALES:
            raise SetupError(f"Unknown language {lang!r}: one of {', '.join(LOCALES)}")
        return lang

    def _owner_ids(self) -> str:
        ids = self.o.owner_ids
        if ids is None:
            ids = self._ask("Your own Telegram user ID, told when the desk needs you (optional)")
        ids = ids.replace(" ", "")
        if ids and not _IDS_RE.match(ids):
            raise SetupError("OWNER_IDS must be Telegram user IDs separated by commas")
        return ids

    # --- the staff group ---------------------------------------------------------------------

    async def _wait_for_group(self, bot: Bot) -> int:
        """The group the operator adds the bot to now (not one from an older update still
        queued): the first one where it is an administrator; one where it was only added as a
        member when no promotion comes before the wait runs out (its rights are checked next)."""
        assert self.a.me is not None
        offset = await self._skip_backlog(bot)
        self.term.say(
            f"Add @{self.a.me.username} to your staff group and make it an administrator "
            f"(group settings: Administrators, Add admin). Waiting up to {self.o.wait:.0f} s..."
        )
        deadline, member_of = time.monotonic() + self.o.wait, None
        while (left := deadline - time.monotonic()) > 0:
            updates = await self._poll(bot, offset, max(1, min(int(left), 30)))
            for update in updates:
                offset = update.update_id + 1
                change = update.my_chat_member
                chat_id = self._added_to_group(change)
                if chat_id is None or (member_of is not None and chat_id != member_of):
                    continue
                assert change is not None
                if member_of is None:
                    self.term.say(f"Found the group {change.chat.title!r}: ID {chat_id}.")
                admin = (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.CREATOR)
                if change.new_chat_member.status in admin:
                    return chat_id
                if member_of is None:
                    self.term.say(
                        "The bot was added as a member: make it an administrator there; waiting..."
                    )
                member_of = chat_id
        if member_of is not None:
            return member_of  # never promoted: the rights check says what is missing
        raise SetupError("The bot was not added to a group in time; run again or use --group-id")

    async def _skip_backlog(self, bot: Bot) -> int | None:
        """Forget the updates Telegram still holds (an "added to a group" from an earlier try):
        the offset after the last of them."""
        backlog = await self._poll(bot, -1, 0)
        return backlog[-1].update_id + 1 if backlog else None

    async def _poll(self, bot: Bot, offset: int | None, seconds: int) -> list[Update]:
        try:
            return await bot.get_updates(
                offset=offset, timeout=seconds, allowed_updates=["my_chat_member"]
            )
        except TelegramConflictError:
            raise SetupError(
                "Telegram refuses getUpdates: a webhook is set or the bot is running; "
                "stop it, or give the group with --group-id"
            ) from None

    def _added_to_group(self, change: ChatMemberUpdated | None) -> int | None:
        if change is None or change.chat.type not in ("group", "supergroup"):
            return None
        gone = (ChatMemberStatus.LEFT, ChatMemberStatus.KICKED)
        if change.new_chat_member.user.id != self.bot_id or change.new_chat_member.status in gone:
            return None
        return change.chat.id

    @property
    def bot_id(self) -> int:
        assert self.a.me is not None
        return self.a.me.id

    async def _check_rights(self, bot: Bot, chat_id: int) -> None:
        """Says what the bot cannot do in the group; setup goes on (the bot re-checks at start)."""
        try:
            chat = await bot.get_chat(chat_id)
            member = await bot.get_chat_member(chat_id, self.bot_id)
        except TelegramAPIError as error:
            raise SetupError(f"The group {chat_id} cannot be reached: {error.message}") from None
        missing = missing_rights(member, forum=bool(chat.is_forum))
        if missing:
            self.term.say(
                "In that group the bot is missing: " + "; ".join(missing) + ". Give it these "
                "rights (group settings: Administrators); until then staff messages wait."
            )
        else:
            self.term.say("The bot has the rights it needs in that group.")

    # --- the files ---------------------------------------------------------------------------

    def _secrets_dir(self) -> Path:
        folder = self.o.secrets_dir or self.o.env_file.parent / "secrets"
        data = (self.o.env_file.parent / "data").resolve()
        if folder.resolve() == data or data in folder.resolve().parents:
            raise SetupError(
                f"--secrets-dir {folder} is inside the data folder: a copy of data/ would "
                "carry the key that opens it; choose another folder"
            )
        return folder

    def _write_secrets(self, folder: Path) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        key_path, secret_path = folder / KEY_FILE, folder / SECRET_FILE
        for path, make in ((key_path, new_master_key), (secret_path, _new_secret)):
            if path.exists():  # never replaced: data written with it would be lost
                _check_existing(path)
                self.term.say(f"Kept the existing {path} (mode 0600).")
                os.chmod(path, 0o600)
                continue
            _write_private(path, make() + "\n", exclusive=True)
            self.term.say(f"Wrote {path} (mode 0600).")
        return key_path, secret_path

    def _write_env(self, key_path: Path, secret_path: Path) -> None:
        a, home = self.a, self.o.env_file.parent
        lines = [
            "# Written by `python -m bot setup`. Every setting is listed in README.md.",
            f"BOT_TOKEN={a.token}",
            f"ADMIN_CHAT_ID={a.group_id}",
            f"DATA_KEY_FILE={_relative(key_path, home)}",
            f"PSEUDONYM_SECRET_FILE={_relative(secret_path, home)}",
            f"POLICY_PACK={a.pack}",
            f"DEFAULT_LOCALE={a.lang}",
        ]
        if self.o.api_url != TELEGRAM_API:
            lines.append(f"TELEGRAM_API_URL={self.o.api_url}")
        if a.owner_ids:
            lines.append(f"OWNER_IDS={a.owner_ids}")
        if self.o.force and self.o.env_file.exists():
            # Kept, not lost: the old file may hold the only copy of a key (DATA_KEY=...).
            old = _aside(self.o.env_file)
            self.term.say(f"Moved the old {self.o.env_file} to {old}.")
        _write_private(self.o.env_file, "\n".join(lines) + "\n", exclusive=True)
        self.term.say(f"Wrote {self.o.env_file} (mode 0600; it holds the token).")

    def _farewell(self, key_path: Path, secret_path: Path) -> None:
        self.term.say(
            f"Back up {key_path} and {secret_path} now, somewhere apart from the backups of "
            "data/ (a password manager, another machine): without the key the stored data "
            "cannot be read, and a copy of data/ alone must not open it.\n"
            "Start the bot with: python -m bot"
        )


def missing_rights(member: object, *, forum: bool) -> list[str]:
    """What the bot lacks in the staff group: posting, deleting (redactions), topics (forums)."""
    status = getattr(member, "status", None)
    if status in (ChatMemberStatus.LEFT, ChatMemberStatus.KICKED):
        return ["membership (the bot is not in the group)"]
    if status == ChatMemberStatus.CREATOR:
        return []
    missing = []
    if status == ChatMemberStatus.RESTRICTED and not getattr(member, "can_send_messages", False):
        missing.append("the right to post messages")
    if status != ChatMemberStatus.ADMINISTRATOR:
        missing.append("administrator status")
    if not getattr(member, "can_delete_messages", False):
        missing.append("the right to delete messages")
    if forum and not getattr(member, "can_manage_topics", False):
        missing.append("the right to manage topics")
    return missing


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def _check_existing(path: Path) -> None:
    try:
        text = path.read_text("ascii")
        if path.name == KEY_FILE:
            parse_master_key(text, str(path))
        elif len(text.strip()) < 16:
            raise KeyProblem(f"{path} holds less than 16 characters")
    except (OSError, UnicodeDecodeError, KeyProblem) as error:
        raise SetupError(f"{path} exists but cannot be used ({error}); move it away") from None


def _write_private(path: Path, text: str, *, exclusive: bool) -> None:
    """Written with mode 0600 from the first byte (never readable by others, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise SetupError(f"{path} exists; use --force to overwrite it") from None
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    os.chmod(path, 0o600)


def _aside(path: Path) -> Path:
    """Move `path` to a new name beside it (`.env.20261207-201500`), mode 0600; the new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidates = (path.with_name(f"{path.name}.{stamp}{f'.{n}' if n else ''}") for n in count())
    target = next(c for c in candidates if not c.exists())
    path.replace(target)
    os.chmod(target, 0o600)
    return target


def _relative(path: Path, home: Path) -> str:
    """The path as the bot, started beside `.env`, will find it."""
    try:
        return str(path.resolve().relative_to(home.resolve()))
    except ValueError:
        return str(path.resolve())


def main(argv: list[str], term: Terminal | None = None) -> int:
    options = parse_args(argv)
    try:
        asyncio.run(Setup(options, term or Terminal()).run())
    except (SetupError, ConfigError) as error:
        print(f"Setup stopped: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Setup interrupted.", file=sys.stderr)
        return 1
    return 0
