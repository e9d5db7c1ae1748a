"""The container files: there is no Docker daemon here, so they are checked as data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parent.parent


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text("utf-8")))


def test_compose_runs_the_bot_on_postgresql_and_redis() -> None:
    services = compose()["services"]
    assert set(services) == {"bot", "postgres", "redis"}
    for name, service in services.items():
        check = service["healthcheck"]
        assert check["test"] and check["interval"] and check["retries"], name
        assert service["restart"] == "unless-stopped", name
    bot = services["bot"]
    assert "/healthz" in " ".join(bot["healthcheck"]["test"])
    assert bot["env_file"] == ".env"  # the secrets: BOT_TOKEN, WEBHOOK_SECRET, ...
    env = bot["environment"]
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:6379/")
    assert "${POSTGRES_PASSWORD}" in env["DATABASE_URL"]  # from .env, not written here
    assert bot["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }


def test_compose_keeps_data_in_volumes() -> None:
    spec = compose()
    volumes = spec["volumes"]
    services = spec["services"]
    assert "bot-data:/app/data" in services["bot"]["volumes"]
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    for mount in (v for s in services.values() for v in s.get("volumes", [])):
        assert mount.split(":")[0] in volumes


def test_dockerfile_is_slim_non_root_with_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text("utf-8")
    assert re.search(r"^FROM python:3\.1\d-slim$", text, re.M)
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and user[-1] != "root"
    assert 'VOLUME ["/app/data"]' in text
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.M)
    assert 'CMD ["python", "-m", "bot"]' in text


def test_compose_takes_the_key_and_secret_from_the_files_setup_writes() -> None:
    spec = compose()
    bot = spec["services"]["bot"]
    assert set(bot["secrets"]) == {"data_key", "pseudonym_secret"}
    assert spec["secrets"]["data_key"]["file"] == "./secrets/data_key"
    assert spec["secrets"]["pseudonym_secret"]["file"] == "./secrets/pseudonym_secret"
    assert bot["environment"]["DATA_KEY_FILE"] == "/run/secrets/data_key"
    assert bot["environment"]["PSEUDONYM_SECRET_FILE"] == "/run/secrets/pseudonym_secret"
