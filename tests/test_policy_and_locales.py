from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import ConfigError
from bot.i18n import LOCALES, Translator, catalog
from bot.policy import LegalBasis, RequestType, load_pack, shipped_packs
from bot.render import notice_text

PLACEHOLDER = re.compile(r"\{(\w+)\}")


def test_shipped_packs() -> None:
    assert shipped_packs() == ["by_99z_sports", "gdpr_hosting"]


def test_law_99z_pack() -> None:
    pack = load_pack("by_99z_sports")
    assert [p.id for p in pack.consent_purposes] == ["marketing", "model_training", "cross_border"]
    assert all(p.legal_basis is LegalBasis.CONSENT for p in pack.consent_purposes)
    assert pack.deadlines[RequestType.ERASURE].days == 15
    assert pack.deadlines[RequestType.ERASURE].kind == "calendar"
    assert pack.deadlines[RequestType.DISCLOSURES].kind == "working"
    assert (pack.age.consent_age, pack.age.marriage_lowers) == (16, True)
    assert pack.operator.registration_number == "УНП 193688628"
    assert pack.marketing is not None and pack.marketing.purpose == "marketing"


def test_gdpr_pack() -> None:
    pack = load_pack("gdpr_hosting")
    assert {d.days for d in pack.deadlines.values()} == {30}
    assert RequestType.PORTABILITY in pack.rights
    assert pack.marketing is not None and pack.marketing.purpose == "mailings"
    assert pack.age.marriage_lowers is False


@pytest.mark.parametrize("name", ["by_99z_sports", "gdpr_hosting"])
@pytest.mark.parametrize("locale", LOCALES)
def test_notice_fits_one_message(name: str, locale: str) -> None:
    text = notice_text(load_pack(name), Translator(locale))
    assert len(text) < 4096
    assert "{" not in text


def write_pack(tmp_path: Path, **replace: str) -> Path:
    source = (Path(__file__).parent.parent / "bot/packs/by_99z_sports.toml").read_text("utf-8")
    for old, new in replace.items():
        assert old in source
        source = source.replace(old, new)
    path = tmp_path / "operator.toml"
    path.write_text(source, "utf-8")
    return path


def test_an_operator_pack_from_a_file(tmp_path: Path) -> None:
    path = write_pack(tmp_path, **{'version = "1.0"': 'version = "2.0"'})
    assert load_pack(str(path)).policy.version == "2.0"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({'legal_basis = "contract"': 'legal_basis = "whim"'}, "purposes.0.legal_basis"),
        ({'timezone = "Europe/Minsk"': 'timezone = "Mars/Olympus"'}, "timezone"),
        ({'country = "BY"': 'country = "Belarus"'}, "operator.country"),
        ({"erasure = { days = 15": "erasure = { days = 0"}, "deadlines.erasure.days"),
        ({'purpose = "marketing"': 'purpose = "account"'}, "marketing.purpose"),
        ({'email = "admin@gybry.com"': 'email = "nobody"'}, "operator.contacts.email"),
        ({"consent_age = 16\n": ""}, None),  # has a default: fine
        ({"marriage_lowers = true": ""}, "age.marriage_lowers"),
        ({'withdrawal = { days = 15, kind = "calendar" }': ""}, "withdrawal"),
    ],
)
def test_pack_errors_name_the_field(
    tmp_path: Path, change: dict[str, str], named: str | None
) -> None:
    path = write_pack(tmp_path, **change)
    if named is None:
        load_pack(str(path))
        return
    with pytest.raises(ConfigError) as error:
        load_pack(str(path))
    message = str(error.value)
    assert named in message and "\n" not in message
    assert message.startswith("Policy pack error (operator.toml)")


def test_pack_syntax_error_and_missing_file(tmp_path: Path) -> None:
    path = write_pack(tmp_path, **{"[operator]": "[operator"})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_pack(str(path))
    with pytest.raises(ConfigError, match="POLICY_PACK file not found"):
        load_pack(str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match="neither a shipped pack"):
        load_pack("no_such_pack")


def test_catalogs_have_the_same_keys_and_placeholders() -> None:
    ru, en = catalog("ru"), catalog("en")
    assert set(ru) == set(en)
    for key in ru:
        assert set(PLACEHOLDER.findall(ru[key])) == set(PLACEHOLDER.findall(en[key])), key


def test_every_key_used_in_code_exists() -> None:
    root = Path(__file__).parent.parent
    used: set[str] = set()
    for folder in ("bot", "handlers"):
        for path in (root / folder).rglob("*.py"):
            used |= set(re.findall(r'\bt\("([a-z_]+\.[a-z_]+)"', path.read_text("utf-8")))
    missing = used - set(catalog("en"))
    assert not missing
    assert len(used) > 30


def test_no_user_facing_text_in_code() -> None:
    """Handlers never build Cyrillic or English sentences themselves."""
    root = Path(__file__).parent.parent
    for path in (root / "handlers").rglob("*.py"):
        source = path.read_text("utf-8")
        assert not re.search(r"[А-Яа-яЁё]", source), path
        for call in re.findall(r"\.(?:answer|send_message|edit_text|reply)\(\s*\"[A-Za-z]", source):
            raise AssertionError(f"literal text sent in {path}: {call}")
