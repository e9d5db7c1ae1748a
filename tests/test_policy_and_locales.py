from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.core.errors import ConfigError
from bot.core.i18n import LOCALES, Translator, catalog
from bot.core.law import DayKind
from bot.core.packs import load_pack, shipped_packs
from bot.core.policy import ClarifyRule, Deadline, LegalBasis, RequestType
from bot.telegram.texts.notice import notice_text
from tests.packs import filled_99z

PLACEHOLDER = re.compile(r"\{\s*\$?(\w+)\s*(?:\}|->)")  # {name}, {$name}, { $name -> ...


def test_shipped_packs() -> None:
    assert shipped_packs() == ["by_99z_sports", "gdpr_hosting"]


def test_law_99z_pack() -> None:
    pack = load_pack("by_99z_sports")
    assert [p.id for p in pack.consent_purposes] == ["marketing", "model_training", "cross_border"]
    assert all(p.legal_basis is LegalBasis.CONSENT for p in pack.consent_purposes)
    # The catalogue's Law 99-Z gives every term; the seed sets none stricter.
    [law] = pack.under
    assert law.deadlines[RequestType.ERASURE].days == 15
    assert law.deadlines[RequestType.ERASURE].kind == "calendar"
    # Law 99-Z art. 11: access in 5 working days; art. 12: disclosures in 15 (calendar) days,
    # shorter than the seed's 15 working days.
    assert law.deadlines[RequestType.ACCESS] == Deadline(days=5, kind=DayKind.WORKING)
    assert law.deadlines[RequestType.DISCLOSURES] == Deadline(days=15, kind=DayKind.CALENDAR)
    assert law.deadlines[RequestType.WITHDRAWAL] == Deadline(days=15, kind=DayKind.CALENDAR)
    assert law.breach == Deadline(days=3, kind=DayKind.WORKING)
    assert pack.requests.clarify is ClarifyRule.RESTART and pack.requests.extension_months == 0
    # State bodies are named among recipients; the EU/EEA is not a region needing safeguards.
    recipients = [r.ru for p in pack.purposes for r in p.recipients]
    assert any("государственные органы" in r for r in recipients)
    transfer = pack.consent_purpose("cross_border")
    assert transfer is not None and "ЕС" not in transfer.description.ru
    assert [(c.name.en, c.adequate) for c in transfer.countries] == [("USA", False)]
    assert transfer.actions is not None and "передача" in transfer.actions.ru
    assert [p.id for p in pack.purposes if p.withdrawal_task] == ["model_training", "cross_border"]
    assert (pack.age.consent_age, pack.age.marriage_lowers) == (16, True)
    assert pack.operator.registration_number == "УНП 193688628"
    assert pack.marketing is not None and pack.marketing.purpose == "marketing"


def test_gdpr_pack() -> None:
    pack = load_pack("gdpr_hosting")
    assert {d.days for d in pack.deadlines.values()} == {30}
    # GDPR art. 12(3): one month, so the seed's 30 days end no later than a month.
    assert {d.at_most_months for d in pack.deadlines.values()} == {1}
    assert all(d.at_most_months is None for d in load_pack("by_99z_sports").deadlines.values())
    # Law 99-Z applies beside the GDPR: both breach terms and both authorities come from them.
    assert [law.id for law in pack.laws] == ["by_99z", "gdpr"]
    assert [law.breach for law in pack.laws] == [
        Deadline(days=3, kind=DayKind.WORKING),
        Deadline(days=72, kind=DayKind.HOURS),
    ]
    assert pack.breach.users == Deadline(days=72, kind=DayKind.HOURS)
    assert pack.requests.clarify is ClarifyRule.PAUSE and pack.requests.extension_months == 2
    bases = {p.legal_basis for p in pack.purposes}
    assert LegalBasis.LEGAL_OBLIGATION in bases
    assert all(
        p.interest for p in pack.purposes if p.legal_basis is LegalBasis.LEGITIMATE_INTERESTS
    )
    assert any("law-enforcement" in r.en for p in pack.purposes for r in p.recipients)
    assert pack.automated_decisions is not None and "solely" in pack.automated_decisions.en
    assert all(authority.court is not None for authority in pack.authorities)
    assert RequestType.PORTABILITY in pack.rights
    assert pack.marketing is not None and pack.marketing.purpose == "mailings"
    assert pack.age.marriage_lowers is True  # Law 99-Z


@pytest.mark.parametrize("name", ["by_99z_sports", "gdpr_hosting"])
@pytest.mark.parametrize("locale", LOCALES)
def test_notice_fits_one_message(name: str, locale: str) -> None:
    text = notice_text(load_pack(name), Translator(locale))
    assert len(text) < 4096
    assert "{" not in text


def write_pack(tmp_path: Path, **replace: str) -> Path:
    source = filled_99z()
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
        (
            {
                "\n[requests]\n": "\n[deadlines]\nerasure = { days = 0, kind = 'calendar' }\n"
                "[requests]\n"
            },
            "deadlines.erasure.days",
        ),
        ({'purpose = "marketing"': 'purpose = "account"'}, "marketing.purpose"),
        ({'email = "admin@gybry.com"': 'email = "nobody"'}, "operator.contacts.email"),
        ({"consent_age = 16\n": ""}, None),  # has a default: fine
        ({"marriage_lowers = true": ""}, "age.marriage_lowers"),
        (
            {'"withdrawal", "complaint"]': '"withdrawal", "portability", "complaint"]'},
            "portability",
        ),
        ({'actions = { ru = "сбор, хранение, использование для отправки': "#"}, "'actions'"),
        ({'interest = { ru = "безопасность': "#"}, "'interest'"),
        ({'adequate = false, risks = { ru = "в США': "adequate = false }, #"}, "'risks'"),
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
