"""`python -m bot setup` against the fake Bot API: the token check, the staff group found from a
`my_chat_member` update, the files and their modes, no overwriting, flags without a terminal."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.service.config import load_settings
from bot.service.setup import Options, Setup, SetupError, Terminal
from storage.crypto import parse_master_key
from tests.fake_telegram import BOT_ID, TOKEN, FakeTelegram, _member

ROOT = Path(__file__).parent.parent
GROUP = -1001234567
BAD_TOKEN = "123456789:WRONG-token-for-the-fake-bot-api-000"


class Recorder(Terminal):
    """A terminal with scripted answers; everything said is kept."""

    def __init__(
        self,
        answers: list[str] | None = None,
        secret: str = "",
        on_wait: Callable[[], object] | None = None,
    ) -> None:
        self.said: list[str] = []
        self.asked: list[str] = []
        self.answers, self.secret = list(answers or []), secret
        self.on_wait = on_wait  # what the operator does when asked to add the bot to the group
        super().__init__(say=self._say, ask=self._ask, ask_secret=self._ask_secret)

    def _say(self, text: str) -> None:
        self.said.append(text)
        if text.startswith("Add @") and self.on_wait is not None:
            self.on_wait()

    def _ask(self, prompt: str) -> str:
        self.asked.append(prompt)
        return self.answers.pop(0)

    def _ask_secret(self, prompt: str) -> str:
        self.asked.append(prompt)
        return self.secret

    @property
    def text(self) -> str:
        return "\n".join(self.said)


def added(
    fake: FakeTelegram, chat_id: int, *, status: str = "administrator", kind: str = "supergroup"
) -> None:
    """Telegram's update when someone adds (or promotes) the bot in a chat."""
    fake.push_update(
        {
            "my_chat_member": {
                "chat": {"id": chat_id, "type": kind, "title": "Staff"},
                "from": {"id": 42, "is_bot": False, "first_name": "Owner"},
                "date": 0,
                "old_chat_member": _member("left", fake.bot_user),
                "new_chat_member": _member(status, fake.bot_user),
            }
        }
    )


def options(fake: FakeTelegram, folder: Path, **changes: Any) -> Options:
    given: dict[str, Any] = {
        "token": TOKEN,
        "pack": "gdpr_hosting",
        "lang": "en",
        "owner_ids": "",
        "env_file": folder / ".env",
        "api_url": fake.url,
        "wait": 10,
        "interactive": False,
    }
    return Options(**(given | changes))


def files(folder: Path) -> list[Path]:
    return list(folder.iterdir())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def env_lines(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


async def test_group_found_from_my_chat_member_and_files_written(
    fake: FakeTelegram, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.add_group(GROUP, "Staff")

    def operator() -> None:
        added(fake, 777, kind="private")  # not a group
        added(fake, -100999, status="left")  # the bot removed from another group
        added(fake, GROUP)

    term = Recorder(on_wait=operator)
    await Setup(options(fake, tmp_path, owner_ids="42, 43"), term).run()

    assert "Token accepted: this is @privacy_desk_test_bot." in term.said
    assert f"Found the group 'Staff': ID {GROUP}." in term.said
    assert "The bot has the rights it needs in that group." in term.said
    [backlog, polls, *_] = [p for m, p in fake.calls if m == "getUpdates"]
    assert (int(backlog["offset"]), int(backlog["timeout"])) == (-1, 0)  # older ones dropped
    assert polls["allowed_updates"] == ["my_chat_member"]

    env = tmp_path / ".env"
    key, secret = tmp_path / "secrets" / "data_key", tmp_path / "secrets" / "pseudonym_secret"
    assert [mode(p) for p in (env, key, secret)] == [0o600, 0o600, 0o600]
    values = env_lines(env)
    assert values == {
        "BOT_TOKEN": TOKEN,
        "ADMIN_CHAT_ID": str(GROUP),
        "DATA_KEY_FILE": "secrets/data_key",
        "PSEUDONYM_SECRET_FILE": "secrets/pseudonym_secret",
        "POLICY_PACK": "gdpr_hosting",
        "DEFAULT_LOCALE": "en",
        "TELEGRAM_API_URL": fake.url,
        "OWNER_IDS": "42,43",
    }
    assert len(parse_master_key(key.read_text(), "key")) == 32
    assert not (tmp_path / "data").exists()  # the key is not in the data folder

    # The bot reads what setup wrote.
    monkeypatch.chdir(tmp_path)
    for name in ("BOT_TOKEN", "PSEUDONYM_SECRET", "DATA_KEY", "TELEGRAM_API_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.admin_chat_id == GROUP
    assert settings.pseudonym_secret.get_secret_value() == secret.read_text().strip()
    assert settings.master_keys().current == parse_master_key(key.read_text(), "key")

    # Where to back up what, and neither the token nor a secret in anything said.
    assert f"Back up {key} and {secret}" in term.text
    for value in (TOKEN, key.read_text().strip(), secret.read_text().strip()):
        assert value not in term.text


async def test_a_bad_token_is_refused_and_nothing_is_written(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    term = Recorder()
    with pytest.raises(SetupError, match=r"rejected this token \(401\)") as error:
        await Setup(options(fake, tmp_path, token=BAD_TOKEN), term).run()
    assert BAD_TOKEN not in str(error.value) + term.text
    with pytest.raises(SetupError, match="does not look like one from @BotFather"):
        await Setup(options(fake, tmp_path, token="nonsense"), term).run()
    with pytest.raises(SetupError, match="No token"):
        await Setup(options(fake, tmp_path, token=None), term).run()
    assert files(tmp_path) == []


async def test_an_existing_env_is_kept_unless_forced_and_the_key_never_replaced(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    fake.add_group(GROUP, "Staff")
    (tmp_path / ".env").write_text("BOT_TOKEN=mine\n")
    with pytest.raises(SetupError, match=r"\.env exists; use --force"):
        await Setup(options(fake, tmp_path, group_id=GROUP), Recorder()).run()
    assert (tmp_path / ".env").read_text() == "BOT_TOKEN=mine\n"
    assert not (tmp_path / "secrets").exists()

    term = Recorder()
    await Setup(options(fake, tmp_path, group_id=GROUP, force=True), term).run()
    [old] = [p for p in files(tmp_path) if p.name.startswith(".env.")]  # it may hold a key
    assert (old.read_text(), mode(old)) == ("BOT_TOKEN=mine\n", 0o600)
    assert f"Moved the old {tmp_path / '.env'} to {old}." in term.said
    key = tmp_path / "secrets" / "data_key"
    first = key.read_text()
    term = Recorder()
    await Setup(options(fake, tmp_path, group_id=GROUP, force=True), term).run()
    assert key.read_text() == first  # data written with it stays readable
    assert f"Kept the existing {key} (mode 0600)." in term.said
    assert len([p for p in files(tmp_path) if p.name.startswith(".env.")]) == 2  # none lost
    assert env_lines(tmp_path / ".env")["ADMIN_CHAT_ID"] == str(GROUP)
    assert mode(tmp_path / ".env") == 0o600


async def test_secrets_outside_the_data_folder(fake: FakeTelegram, tmp_path: Path) -> None:
    fake.add_group(GROUP, "Staff")
    inside = tmp_path / "data" / "keys"
    with pytest.raises(SetupError, match="inside the data folder"):
        await Setup(options(fake, tmp_path, group_id=GROUP, secrets_dir=inside), Recorder()).run()
    elsewhere = tmp_path / "home" / ".config" / "privacy-desk"
    await Setup(options(fake, tmp_path, group_id=GROUP, secrets_dir=elsewhere), Recorder()).run()
    assert mode(elsewhere / "data_key") == 0o600
    assert env_lines(tmp_path / ".env")["DATA_KEY_FILE"] == "home/.config/privacy-desk/data_key"


async def test_missing_rights_are_named(fake: FakeTelegram, tmp_path: Path) -> None:
    fake.add_group(GROUP, "Staff", bot_status="member", forum=True)
    term = Recorder(on_wait=lambda: added(fake, GROUP, status="member"))  # never promoted
    await Setup(options(fake, tmp_path, wait=2), term).run()
    assert "The bot was added as a member: make it an administrator there; waiting..." in term.said
    [said] = [line for line in term.said if "the bot is missing" in line]
    assert "administrator status" in said
    assert "the right to delete messages" in said
    assert "the right to manage topics" in said


async def test_no_group_in_time(fake: FakeTelegram, tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="not added to a group in time"):
        await Setup(options(fake, tmp_path, wait=1), Recorder()).run()
    fake.fail("getUpdates", status=409, description="Conflict: can't use getUpdates method")
    with pytest.raises(SetupError, match="a webhook is set or the bot is running"):
        await Setup(options(fake, tmp_path), Recorder()).run()
    with pytest.raises(SetupError, match="cannot be reached: Bad Request: chat not found"):
        await Setup(options(fake, tmp_path, group_id=-100404), Recorder()).run()
    assert files(tmp_path) == []


async def test_interactive_answers(fake: FakeTelegram, tmp_path: Path) -> None:
    fake.add_group(GROUP, "Staff")
    term = Recorder(answers=["", "ru", "4242"], secret=TOKEN, on_wait=lambda: added(fake, GROUP))
    chosen = options(fake, tmp_path, token=None, pack=None, lang=None, owner_ids=None)
    chosen.interactive = True
    await Setup(chosen, term).run()
    assert term.asked[0] == "Bot token (not shown): "  # asked without echo (getpass)
    assert "Policy packs shipped: by_99z_sports, gdpr_hosting" in term.said
    values = env_lines(tmp_path / ".env")
    assert (values["POLICY_PACK"], values["DEFAULT_LOCALE"]) == ("by_99z_sports", "ru")
    assert values["OWNER_IDS"] == "4242"
    assert TOKEN not in term.text


async def test_python_m_bot_setup_with_flags_and_no_terminal(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    fake.add_group(GROUP, "Staff")
    env = {k: v for k, v in os.environ.items() if not k.isupper() or k in {"PATH", "HOME"}}
    env["PYTHONPATH"] = str(ROOT)
    flags = ["--yes", "--pack", "by_99z_sports", "--lang", "ru", "--api-url", fake.url]

    async def setup(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "setup", *flags, *args,
            cwd=tmp_path, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    code, out, err = await setup("--token", BAD_TOKEN)
    assert (code, out) == (2, "")
    assert err.strip().splitlines() == [
        "Setup stopped: The Bot API rejected this token (401): check it with @BotFather"
    ]

    env["BOT_TOKEN"] = TOKEN  # kept out of the process list
    code, out, err = await setup("--group-id", str(GROUP))
    assert (code, err) == (0, "")
    assert "Token accepted: this is @privacy_desk_test_bot." in out
    key = (tmp_path / "secrets" / "data_key").read_text().strip()
    assert TOKEN not in out and key not in out
    assert env_lines(tmp_path / ".env")["ADMIN_CHAT_ID"] == str(GROUP)

    code, out, err = await setup("--group-id", str(GROUP))
    assert code == 2 and "exists; use --force to overwrite it" in err


async def test_an_old_update_in_the_backlog_is_not_taken_for_the_group(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    """An "added to a group" update left from an earlier try (or another group) is dropped: the
    group is the one the operator adds the bot to now."""
    fake.add_group(-100777, "Old staff")
    fake.add_group(GROUP, "Staff")
    added(fake, -100777)  # queued before setup started
    term = Recorder(on_wait=lambda: added(fake, GROUP))
    await Setup(options(fake, tmp_path), term).run()
    assert env_lines(tmp_path / ".env")["ADMIN_CHAT_ID"] == str(GROUP)
    assert f"Found the group 'Staff': ID {GROUP}." in term.said


async def test_added_as_a_member_then_promoted_checks_the_rights_after_the_promotion(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    fake.add_group(GROUP, "Staff", bot_status="member")

    def promote() -> None:
        fake.members[(GROUP, BOT_ID)] = "administrator"
        added(fake, GROUP)

    def operator() -> None:
        added(fake, GROUP, status="member")  # Telegram's first update: added, not promoted
        asyncio.get_running_loop().call_later(0.3, promote)

    term = Recorder(on_wait=operator)
    await Setup(options(fake, tmp_path), term).run()
    assert "The bot has the rights it needs in that group." in term.said
    assert not [line for line in term.said if "the bot is missing" in line]
    assert term.said.count(f"Found the group 'Staff': ID {GROUP}.") == 1


@pytest.mark.parametrize(
    ("method", "status", "description"),
    [
        ("getMe", 500, "Internal Server Error"),
        ("getUpdates", 502, "Bad Gateway"),
        ("getUpdates", 429, "Too Many Requests: retry after 5"),
    ],
)
async def test_other_bot_api_errors_end_in_one_line(
    fake: FakeTelegram, tmp_path: Path, method: str, status: int, description: str
) -> None:
    fake.fail(method, status=status, description=description, times=10)
    with pytest.raises(SetupError, match="The Bot API refused a call") as error:
        await Setup(options(fake, tmp_path), Recorder()).run()
    assert "\n" not in str(error.value) and TOKEN not in str(error.value)
    assert files(tmp_path) == []
