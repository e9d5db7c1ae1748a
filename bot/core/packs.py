"""Reading policy packs: the shipped ones in bot/packs/, an operator's own by path, the laws of
the catalogue (bot/packs/laws/) and the calendar files a pack names (bot/packs/calendars/), each
resolved by name before the pack is validated (bot/core/policy.py holds what they are)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from bot.core.errors import ConfigError, describe_validation_error
from bot.core.policy import Law, PolicyPack

PACKS_DIR = Path(__file__).resolve().parents[1] / "packs"


def _read_toml(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path.name} is not valid TOML: {error}") from None


def load_law(law_id: str) -> Law:
    """A law of the catalogue, bot/packs/laws/<id>.toml."""
    path = PACKS_DIR / "laws" / f"{law_id}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in path.parent.glob("*.toml")))
        raise ValueError(f"'{law_id}' is not a law of the catalogue ({known})")
    return Law.model_validate({"id": law_id, **_read_toml(path)})


def _calendar_file(pack_path: Path, name: str) -> dict[str, object]:
    beside = pack_path.parent / name
    return _read_toml(beside if beside.is_file() else PACKS_DIR / name)


def shipped_packs() -> list[str]:
    return sorted(p.stem for p in PACKS_DIR.glob("*.toml"))


def resolve_pack_path(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.is_file():
        if not candidate.is_file():
            raise ConfigError(f"Configuration error: POLICY_PACK file not found: {candidate}")
        return candidate
    shipped = PACKS_DIR / f"{name_or_path}.toml"
    if not shipped.is_file():
        raise ConfigError(
            f"Configuration error: POLICY_PACK '{name_or_path}' is neither a shipped pack "
            f"({', '.join(shipped_packs())}) nor a .toml file"
        )
    return shipped


def load_pack(name_or_path: str) -> PolicyPack:
    path = resolve_pack_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"Policy pack error ({path.name}): not valid TOML: {error}") from None
    try:
        return PolicyPack.model_validate(resolved(raw, path))
    except (ValueError, OSError) as error:
        if not isinstance(error, ValidationError):
            raise ConfigError(f"Policy pack error ({path.name}): {error}") from None
        detail = describe_validation_error(error, env_names=False)
        raise ConfigError(f"Policy pack error ({path.name}): {detail}") from None


def resolved(raw: dict[str, object], path: Path | None = None) -> dict[str, object]:
    """The pack's data with each law named by id taken from the catalogue, and each calendar
    named by file read from beside the pack at `path` (calendars/BY.toml), else from the
    shipped ones."""
    here = path or PACKS_DIR / "pack.toml"
    out = dict(raw)
    laws, calendars = raw.get("laws"), raw.get("calendars")
    if isinstance(laws, list):
        out["laws"] = [load_law(law) if isinstance(law, str) else law for law in laws]
    if isinstance(calendars, list):
        out["calendars"] = [_calendar_file(here, c) if isinstance(c, str) else c for c in calendars]
    return out
