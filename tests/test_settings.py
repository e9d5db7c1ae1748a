"""Settings, and what `python -m bot` does with bad ones: one clear line and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.core.errors import ConfigError
from bot.service.config import Settings, load_settings
from tests.kit import DATA_KEY

GOOD_TOKEN = "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef"
SECRET = "a-long-enough-pseudonym-secret"
BASE = {
    "BOT_TOKEN": GOOD_TOKEN,
    "ADMIN_CHAT_ID": "-1",
    "PSEUDONYM_SECRET": SECRET,
    "DATA_KEY": DATA_KEY,
}
ROOT = Path(__file__).parent.parent
SETTINGS = [name.upper() for name in Settings.model_fields]


def run_bot(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.isupper() or k in {"PATH", "HOME"}}
    clean["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,  # no .env there
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(bot_token=GOOD_TOKEN, admin_chat_id=-100, pseudonym_secret=SECRET)
    assert settings.database_url == "sqlite+aiosqlite:///data/bot.db"
    assert settings.policy_pack == "by_99z_sports"
    assert settings.telegram_api_url == "https://api.telegram.org"
    assert (settings.default_locale, settings.staff_locale) == ("ru", "ru")
    assert settings.staff_ids == [] and settings.owner_ids == []
    assert settings.staff_rate == 20
    assert settings.sqlite_path() == Path("data/bot.db")


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        f"BOT_TOKEN={GOOD_TOKEN}\nADMIN_CHAT_ID=-1001\nPSEUDONYM_SECRET={SECRET}\n"
    )
    monkeypatch.setenv("STAFF_IDS", "11, 22,33")
    monkeypatch.setenv("OWNER_IDS", "44,55")
    monkeypatch.setenv("ADMIN_LOCALE", "en")
    monkeypatch.setenv("TELEGRAM_API_URL", "http://localhost:8081/")
    settings = load_settings()
    assert settings.admin_chat_id == -1001
    assert settings.staff_ids == [11, 22, 33] and settings.owner_ids == [44, 55]
    assert (settings.default_locale, settings.staff_locale) == ("ru", "en")
    assert settings.telegram_api_url == "http://localhost:8081"


def start_with(env: dict[str, str], folder: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """`python -m bot`'s main() in `folder` with exactly these settings; its exit code."""
    monkeypatch.chdir(folder)
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return main()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "BOT_TOKEN is required but not set"),
        ({"BOT_TOKEN": GOOD_TOKEN}, "ADMIN_CHAT_ID is required but not set"),
        ({"BOT_TOKEN": GOOD_TOKEN, "ADMIN_CHAT_ID": "-1"}, "PSEUDONYM_SECRET is required"),
        ({"BOT_TOKEN": GOOD_TOKEN, "ADMIN_CHAT_ID": "-1", "PSEUDONYM_SECRET": "short"},
         "PSEUDONYM_SECRET"),
        ({"BOT_TOKEN": GOOD_TOKEN, "ADMIN_CHAT_ID": "staff"}, "ADMIN_CHAT_ID"),
        ({**BASE, "BOT_TOKEN": "nonsense"}, "BOT_TOKEN does not look like"),
        ({**BASE, "STAFF_IDS": "1,x"}, "STAFF_IDS"),
        ({**BASE, "OWNER_IDS": "1,x"}, "OWNER_IDS"),
        ({**BASE, "STAFF_RATE": "100"}, "STAFF_RATE"),
        ({**BASE, "DEFAULT_LOCALE": "de"},
         "DEFAULT_LOCALE"),
        ({**BASE, "TELEGRAM_API_URL": "ftp://x"},
         "TELEGRAM_API_URL"),
        ({**BASE, "DATABASE_URL": "nonsense"},
         "DATABASE_URL"),
        ({**BASE, "POLICY_PACK": "nope"}, "POLICY_PACK"),
        ({k: v for k, v in BASE.items() if k != "DATA_KEY"},
         "DATA_KEY or DATA_KEY_FILE is required but not set"),
        ({**BASE, "DATA_KEY": "not base64!"}, "DATA_KEY is not base64"),
        ({**BASE, "DATA_KEY": "c2hvcnQ="}, "DATA_KEY must be 32 bytes in base64, not 5 bytes"),
        ({**BASE, "DATA_KEY_FILE": "key.txt"}, "set DATA_KEY or DATA_KEY_FILE, not both"),
        ({**BASE, "DATA_KEY_PREVIOUS": "c2hvcnQ="}, "DATA_KEY_PREVIOUS must be 32 bytes"),
        ({**BASE, "PSEUDONYM_SECRET_FILE": "secret.txt"},
         "set PSEUDONYM_SECRET or PSEUDONYM_SECRET_FILE, not both"),
        ({**{k: v for k, v in BASE.items() if k != "PSEUDONYM_SECRET"},
          "PSEUDONYM_SECRET_FILE": "missing.txt"},
         "PSEUDONYM_SECRET_FILE missing.txt cannot be read: No such file or directory"),
        ({**BASE, "DATABASE_URL": "postgresql+asyncpg://bot:pw-in-url@127.0.0.1:1/bot"},
         "Configuration error: cannot reach the database at 127.0.0.1:1: Connection refused"),
        ({**BASE, "DATABASE_URL": "sqlite+aiosqlite:////proc/privacy-desk-test/bot.db"},
         "DATABASE_URL /proc/privacy-desk-test/bot.db"),
    ],
)  # fmt: skip
def test_bad_settings_stop_with_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    named: str,
) -> None:
    assert start_with(env, tmp_path, monkeypatch) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert named in lines[0]


def test_a_dotenv_that_is_not_utf8_stops_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".env").write_bytes(b"BOT_TOKEN=123456:\xff\xfe\n")  # e.g. saved as Latin-1
    assert start_with({}, tmp_path, monkeypatch) == 2
    assert capsys.readouterr().err.strip() == (
        "Configuration error: .env is not valid UTF-8 (byte 17); save it as UTF-8"
    )


def test_python_m_bot_exit_code(tmp_path: Path) -> None:
    result = run_bot(tmp_path, ADMIN_CHAT_ID="-1", PSEUDONYM_SECRET=SECRET)
    assert result.returncode == 2
    assert result.stderr.strip() == "Configuration error: BOT_TOKEN is required but not set"
    assert "Traceback" not in result.stderr


def test_token_value_is_never_printed(tmp_path: Path) -> None:
    secret = "999:short-secret"
    result = run_bot(tmp_path, BOT_TOKEN=secret, ADMIN_CHAT_ID="x")
    assert result.returncode == 2
    assert secret not in result.stderr
    with pytest.raises(ConfigError) as error:
        load_settings(bot_token=secret, admin_chat_id=1, pseudonym_secret=SECRET)
    assert secret not in str(error.value)
