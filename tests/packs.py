"""Shipped packs as an operator has filled them in: the 99-Z pack with the policy version, date
and address its seed does not give (`not_given` emptied), for tests of versions and links."""

from __future__ import annotations

from pathlib import Path

PACKS = Path(__file__).parent.parent / "bot/packs"
NOT_GIVEN_99Z = 'not_given = ["policy.version", "policy.effective_date", "policy.url"]\n'
FILLED_POLICY = (
    '[policy]\nversion = "1.0"\neffective_date = 2025-01-01\nurl = "https://gybry.com/privacy"\n'
)


SYSTEMS_MARK = "# --- The operator's systems"


def without_systems(source: str) -> str:
    """A shipped pack's text without its demo systems and their categories (the pack's last
    part), for a test that lists systems of its own."""
    assert source.count(SYSTEMS_MARK) == 1
    return source[: source.index(SYSTEMS_MARK)]


def filled_99z() -> str:
    """The 99-Z pack's text with version 1.0 of 01.01.2025 at https://gybry.com/privacy."""
    source = (PACKS / "by_99z_sports.toml").read_text("utf-8")
    assert NOT_GIVEN_99Z in source and source.count("[policy]\n") == 1
    return source.replace(NOT_GIVEN_99Z, "").replace("[policy]\n", FILLED_POLICY)


def write_filled_99z(tmp_path: Path, name: str = "filled.toml") -> Path:
    path = tmp_path / name
    path.write_text(filled_99z(), "utf-8")
    return path


PROCESSOR_NOT_GIVEN = ', not_given = ["name", "country"] }'
PROCESSOR_NAMED = (
    ', name = { ru = "ООО «Пример»", en = "Example LLC" }'
    ', country = { ru = "Беларусь", en = "Belarus" } }'
)


def write_complete_99z(tmp_path: Path, name: str = "complete.toml") -> Path:
    """The filled-in 99-Z pack whose processors are named too: nothing is left to fill in, so
    a start tells staff nothing (for tests that count every item to the admin group)."""
    source = filled_99z()
    assert PROCESSOR_NOT_GIVEN in source
    path = tmp_path / name
    path.write_text(source.replace(PROCESSOR_NOT_GIVEN, PROCESSOR_NAMED), "utf-8")
    return path
