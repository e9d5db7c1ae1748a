"""`python -m bot systems check [--user ID]` and `python -m bot systems demo`: the lines the
operator reads, the exit codes (0 every connected system validates, 1 one does not, 2 a
configuration error), and never a URL, a password or a value in the output. SQLite only: a
closed port stands for a server that is down."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.core.packs import PACKS_DIR
from bot.service.config import Settings

SETTINGS = [name.upper() for name in Settings.model_fields]
BASE = {
    "BOT_TOKEN": "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef",
    "ADMIN_CHAT_ID": "-1001",
    "PSEUDONYM_SECRET": "a-long-enough-pseudonym-secret",
    "POLICY_PACK": "gdpr_hosting",
}
SYSTEM_VARS = [
    "HOSTING_ACCOUNTS_DB_URL",
    "HOSTING_SUPPORT_WEBHOOK_URL",
    "HOSTING_SUPPORT_WEBHOOK_SECRET",
    "SPORTS_ACCOUNTS_DB_URL",
    "SPORTS_SUPPORT_WEBHOOK_URL",
    "SPORTS_SUPPORT_WEBHOOK_SECRET",
]


def run(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    **env: str,
) -> tuple[int, str]:
    """main() in `tmp_path` with exactly these settings: its exit code and all it printed."""
    monkeypatch.chdir(tmp_path)
    for name in SETTINGS + SYSTEM_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**BASE, **env}.items():
        monkeypatch.setenv(name, value)
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out + out.err


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_no_system_configured_is_not_connected_and_fine(tmp_path, monkeypatch, capsys) -> None:
    code, out = run(["systems", "check"], tmp_path, monkeypatch, capsys)
    assert code == 0
    assert out.splitlines() == [
        "accounts (sql): not connected (HOSTING_ACCOUNTS_DB_URL is not set)",
        "support (webhook): not connected (HOSTING_SUPPORT_WEBHOOK_URL is not set)",
        "billing (manual): done by hand by staff",
    ]


def test_demo_then_check_and_a_dry_run_that_changes_nothing(tmp_path, monkeypatch, capsys) -> None:
    db = tmp_path / "accounts.db"
    url = f"sqlite+aiosqlite:///{db}"
    code, out = run(
        ["systems", "demo", "--system", "accounts", "--url", url], tmp_path, monkeypatch, capsys
    )
    assert (code, out) == (0, "Demo database of gdpr_hosting.accounts created: 3 demo people\n")
    before = hashlib.sha256(db.read_bytes()).hexdigest()

    code, out = run(
        ["systems", "check", "--user", "5550001"],
        tmp_path,
        monkeypatch,
        capsys,
        HOSTING_ACCOUNTS_DB_URL=url,
    )
    assert code == 0
    assert out.splitlines()[:5] == [
        "accounts (sql): ok",
        "accounts.accounts: access reads 1 row(s), erasure pseudonymises 1 (rows kept)",
        "accounts.services: access reads 2 row(s), erasure deletes 2",
        "accounts.orders: access reads 1 row(s), erasure deletes 1",
        "accounts.invoices: access reads 1 row(s), erasure pseudonymises 1 (rows kept)",
    ]
    assert str(db) not in out and "Anna" not in out
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before

    # The demo refuses to overwrite, unless asked to.
    code, out = run(
        ["systems", "demo", "--system", "accounts", "--url", url], tmp_path, monkeypatch, capsys
    )
    assert code == 2 and "--replace" in out
    code, _ = run(
        ["systems", "demo", "--system", "accounts", "--url", url, "--replace"],
        tmp_path,
        monkeypatch,
        capsys,
    )
    assert code == 0


def test_the_url_may_come_from_dotenv(tmp_path, monkeypatch, capsys) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'accounts.db'}"
    run(["systems", "demo", "--system", "accounts", "--url", url], tmp_path, monkeypatch, capsys)
    (tmp_path / ".env").write_text(f"HOSTING_ACCOUNTS_DB_URL={url}\n")
    code, out = run(["systems", "check"], tmp_path, monkeypatch, capsys)
    assert code == 0 and out.splitlines()[0] == "accounts (sql): ok"


def test_a_pack_naming_a_missing_column_is_one_line_and_exit_1(
    tmp_path, monkeypatch, capsys
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'accounts.db'}"
    run(["systems", "demo", "--system", "accounts", "--url", url], tmp_path, monkeypatch, capsys)
    source = (PACKS_DIR / "gdpr_hosting.toml").read_text("utf-8")
    assert source.count('column = "payer_address"') == 1
    pack = tmp_path / "hosting.toml"
    pack.write_text(source.replace('column = "payer_address"', 'column = "payer_addr"'), "utf-8")
    code, out = run(
        ["systems", "check"],
        tmp_path,
        monkeypatch,
        capsys,
        POLICY_PACK=str(pack),
        HOSTING_ACCOUNTS_DB_URL=url,
    )
    assert code == 1
    assert out.splitlines()[:2] == [
        "accounts: table invoices has no column payer_addr (field)",
        "accounts (sql): 1 problem(s)",
    ]


def test_a_database_down_is_exit_1_without_url_or_password(tmp_path, monkeypatch, capsys) -> None:
    port = closed_port()
    url = f"postgresql+asyncpg://operator:Sup3rSecretPw@127.0.0.1:{port}/accounts"
    code, out = run(
        ["systems", "check"], tmp_path, monkeypatch, capsys, HOSTING_ACCOUNTS_DB_URL=url
    )
    assert code == 1
    assert out.splitlines()[0] == (
        "accounts: cannot connect (ConnectionRefusedError: connection refused)"
    )
    for secret in ("Sup3rSecretPw", "operator", str(port), "127.0.0.1", "postgresql"):
        assert secret not in out


@pytest.mark.parametrize("url", ["nonsense", "nosuchdriver+x://h/db"])
def test_an_unusable_url_is_a_configuration_error(url, tmp_path, monkeypatch, capsys) -> None:
    code, out = run(
        ["systems", "check"], tmp_path, monkeypatch, capsys, HOSTING_ACCOUNTS_DB_URL=url
    )
    assert code == 2
    assert "HOSTING_ACCOUNTS_DB_URL is not a usable SQLAlchemy async URL" in out
    assert url not in out


def test_a_webhook_without_its_secret_is_a_configuration_error(
    tmp_path, monkeypatch, capsys
) -> None:
    code, out = run(
        ["systems", "check"],
        tmp_path,
        monkeypatch,
        capsys,
        HOSTING_SUPPORT_WEBHOOK_URL="https://support.example/jobs",
    )
    assert code == 2
    assert "support: HOSTING_SUPPORT_WEBHOOK_SECRET is not set" in out


def test_demo_of_an_unknown_system(tmp_path, monkeypatch, capsys) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    code, out = run(
        ["systems", "demo", "--system", "billing", "--url", url], tmp_path, monkeypatch, capsys
    )
    assert code == 2 and "No demo database for gdpr_hosting.billing" in out
