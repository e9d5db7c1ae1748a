"""The laws of each operator (issue 20, points 2 and 4): a pack names the laws it is under, each
term is the strictest of them on its own calendar, every authority is named; a calendar file
beside the pack adds the working-day transfers the `holidays` package lacks, and staff are
warned at every start and once a day of a coming year that neither has."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from bot.core.clock import FrozenClock
from bot.core.deadlines import (
    due_date,
    extension_months,
    missing_transfers,
    request_due,
    strictest,
)
from bot.core.errors import ConfigError
from bot.core.formatting import complaint_screen
from bot.core.i18n import Translator
from bot.core.law import DayKind
from bot.core.packs import PACKS_DIR, load_pack
from bot.core.policy import Deadline, PolicyPack, RequestType
from bot.delivery.scheduler import Reminders
from bot.telegram.texts.notice import right_name
from tests.conftest import gdpr_only_pack
from tests.fake_telegram import FakeTelegram
from tests.kit import ADMIN_CHAT_ID, Harness
from tests.test_consents import onboarded
from tests.test_requests import file_erasure

MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 12:00 in Minsk
FIVE_WORKING = Deadline(days=5, kind=DayKind.WORKING)

TRANSFERS_2027 = """country = "BY"
years = [2027]
days_off = [{ date = 2027-01-08, act = "Council of Ministers resolution (test)" }]
working_days = [{ date = 2027-01-16, act = "Council of Ministers resolution (test)" }]
"""


def local_day(moment: datetime) -> date:
    return moment.astimezone(load_pack("gdpr_hosting").zone).date()


def test_the_hosting_operator_is_under_99z_and_the_gdpr_and_the_stricter_term_applies() -> None:
    pack = load_pack("gdpr_hosting")
    assert [law.id for law in pack.laws] == ["by_99z", "gdpr"]
    # Law 99-Z art. 11: access in 5 working days (BY calendar), not the GDPR's month.
    term, due = strictest(pack, RequestType.ACCESS, MONDAY)
    assert term.deadline == FIVE_WORKING and term.law is not None and term.law.id == "by_99z"
    assert local_day(due) == date(2026, 11, 30)
    # Arts. 11 and 13: correction and erasure in 15 days.
    for kind in (RequestType.RECTIFICATION, RequestType.ERASURE, RequestType.WITHDRAWAL):
        assert local_day(request_due(pack, kind, MONDAY)) == date(2026, 12, 8), kind
    # Art. 12: the disclosures term applies where 99-Z does (the right is offered by the pack).
    assert local_day(request_due(pack, RequestType.DISCLOSURES, MONDAY)) == date(2026, 12, 8)
    # Portability is the GDPR's alone: the policy's 30 days, no later than one month.
    term, due = strictest(pack, RequestType.PORTABILITY, MONDAY)
    assert term.law is None and local_day(due) == date(2026, 12, 23)
    # 99-Z allows no extension of its terms; the GDPR's own term may be extended (art. 12(3)).
    assert extension_months(pack, RequestType.ACCESS) == 0
    assert extension_months(pack, RequestType.PORTABILITY) == 2
    # Both authorities are named, each once; both laws in the notice.
    assert [a.name.en for a in pack.authorities] == [
        "the National Personal Data Protection Center of the Republic of Belarus",
        "the supervisory authority of the EU member state where you live, work or where the "
        "alleged infringement took place (GDPR Art. 77)",
    ]
    assert "99-Z" in pack.law_names("en") and "GDPR" in pack.law_names("en")
    assert pack.age.marriage_lowers


@pytest.mark.parametrize(
    ("locale", "first", "second", "rights"),
    [
        (
            "ru",
            "Жалоба в уполномоченный орган",
            "Жалоба в надзорный орган",
            "жалоба в уполномоченный орган или надзорный орган",
        ),
        (
            "en",
            "Complaint to the authority",
            "Complaint to the supervisory authority",
            "complaint to the authority or supervisory authority",
        ),
    ],
)
def test_each_authority_is_called_by_its_own_laws_word(
    locale: str, first: str, second: str, rights: str
) -> None:
    """The National Center is the 99-Z «уполномоченный орган», the EU authority the GDPR's
    «надзорный орган»: not the pack's one word on both."""
    pack = load_pack("gdpr_hosting")
    t = Translator(locale)
    screen = complaint_screen(pack, t)
    assert screen.count(first) == 1 and screen.count(second) == 1
    center = pack.authorities[0].name.get(locale)
    assert screen.index(first) < screen.index(center) < screen.index(second)
    assert right_name(RequestType.COMPLAINT, pack, t) == rights
    single = rights.split(" or ")[0].split(" или ")[0]  # the 99-Z pack: its one authority
    assert right_name(RequestType.COMPLAINT, load_pack("by_99z_sports"), t) == single


def test_each_law_counts_on_its_own_calendar(tmp_path: Path) -> None:
    """The 99-Z term counts Belarusian working days even for a GDPR operator elsewhere."""
    source = (PACKS_DIR / "gdpr_hosting.toml").read_text("utf-8")
    pack = load_pack_text(source.replace('country = "BY"', 'country = "DE"'), tmp_path)
    # Friday 3 July 2026 is a Belarusian holiday, a working day in Germany: received
    # Wednesday 1 July, 5 BY working days are 2, 6, 7, 8, 9 July.
    received = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    assert local_day(request_due(pack, RequestType.ACCESS, received)) == date(2026, 7, 9)


def load_pack_text(text: str, folder: Path) -> PolicyPack:
    path = folder / "operator.toml"
    path.write_text(text, "utf-8")
    return load_pack(str(path))


SINGLE_LAW = """law = { ru = "Закон № 99-З", en = "Law No. 99-Z" }
"""
SINGLE_AUTHORITY = """[operator.authority]
name = { ru = "Национальный центр", en = "the National Center" }
contacts = { website = "https://cpd.by" }

[policy]
"""
SINGLE_TERMS = """[deadlines]
access = { days = 5, kind = "working" }
disclosures = { days = 15, kind = "calendar" }
rectification = { days = 15, kind = "calendar" }
erasure = { days = 15, kind = "calendar" }
restriction = { days = 15, kind = "calendar" }
objection = { days = 15, kind = "calendar" }
withdrawal = { days = 10, kind = "calendar" }

[breach]
authority = { days = 3, kind = "working" }

[requests]
"""


def test_the_99z_pack_names_its_law_from_the_catalogue() -> None:
    """The shipped 99-Z pack repeats nothing of the catalogue's law (issue 20 review)."""
    pack = load_pack("by_99z_sports")
    assert [law.id for law in pack.laws] == ["by_99z"] and pack.law is None
    assert pack.deadlines == {} and pack.breach.authority is None
    assert pack.operator.authority is None
    [law] = pack.under
    assert law.deadlines[RequestType.ACCESS] == FIVE_WORKING and law.breach.days == 3
    assert law.authority.name.en.startswith("the National Personal Data Protection Center")


def test_a_single_law_pack_of_its_own_still_loads_and_a_pack_without_a_law_does_not(
    tmp_path: Path,
) -> None:
    source = (PACKS_DIR / "by_99z_sports.toml").read_text("utf-8")
    source = source.replace('calendars = ["calendars/BY.toml"]\n', "")
    own_law = (
        source.replace('laws = ["by_99z"]\n', SINGLE_LAW)
        .replace("[policy]\n", SINGLE_AUTHORITY)
        .replace("[requests]\n", SINGLE_TERMS)
    )
    pack = load_pack_text(own_law, tmp_path)  # `law`, `operator.authority`, `deadlines`, `breach`
    [own] = pack.under
    assert own.deadlines == pack.deadlines and own.breach == pack.breach.authority
    assert own.deadlines[RequestType.WITHDRAWAL].days == 10
    assert [a.name.en for a in pack.authorities] == ["the National Center"]
    without = own_law.replace(SINGLE_LAW, "")
    with pytest.raises(ConfigError, match="laws: name the laws"):
        load_pack_text(without, tmp_path)
    hosting = (PACKS_DIR / "gdpr_hosting.toml").read_text("utf-8")
    with pytest.raises(ConfigError, match="'eu_ai_act' is not a law of the catalogue"):
        load_pack_text(hosting.replace('"by_99z", "gdpr"', '"eu_ai_act"'), tmp_path)


def pack_with_2027(tmp_path: Path) -> Path:
    """The 99-Z pack with a calendar file beside it listing a 2027 set like 2021's."""
    (tmp_path / "calendars").mkdir()
    (tmp_path / "calendars" / "BY.toml").write_text(TRANSFERS_2027, "utf-8")
    path = tmp_path / "operator.toml"
    path.write_text((PACKS_DIR / "by_99z_sports.toml").read_text("utf-8"), "utf-8")
    return path


def test_the_pack_calendar_overrides_the_package_for_2027(tmp_path: Path) -> None:
    pack = load_pack(str(pack_with_2027(tmp_path)))
    transfers = pack.transfers("BY")
    assert transfers is not None and transfers.covers(2027)
    # Tuesday 12 January 2027 + 5 working days: 13, 14, 15, Saturday 16 (worked), Monday 18.
    assert due_date(date(2027, 1, 12), FIVE_WORKING, "BY", transfers) == date(2027, 1, 18)
    received = datetime(2027, 1, 12, 9, 0, tzinfo=UTC)
    assert local_day(request_due(pack, RequestType.ACCESS, received)) == date(2027, 1, 18)
    # Friday 8 January is a day off: from Thursday 7 (Christmas) one working day is Monday 11.
    assert due_date(date(2027, 1, 7), Deadline(days=1, kind="working"), "BY", transfers) == date(
        2027, 1, 11
    )
    # The package alone has no 2027 transfers: the count would end on Tuesday 19.
    shipped = load_pack("by_99z_sports")
    assert local_day(request_due(shipped, RequestType.ACCESS, received)) == date(2027, 1, 19)
    assert missing_transfers(shipped, date(2026, 11, 23)) == [("BY", 2027)]
    assert missing_transfers(pack, date(2026, 11, 23)) == []
    assert missing_transfers(shipped, date(2026, 10, 1)) == []  # 60 days stay in 2026
    # The hosting pack counts Belarusian working days through 99-Z; the GDPR alone counts none.
    assert missing_transfers(load_pack("gdpr_hosting"), date(2026, 11, 23)) == [("BY", 2027)]
    gdpr_only = load_pack(str(gdpr_only_pack(tmp_path)))
    assert missing_transfers(gdpr_only, date(2026, 11, 23)) == []


async def test_an_access_request_of_12_january_2027_is_due_on_the_18th(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    clock = FrozenClock(datetime(2027, 1, 12, 9, 0, tzinfo=UTC))
    bot = await Harness(fake, tmp_path, pack=str(pack_with_2027(tmp_path)), clock=clock).start()
    try:
        ann = await onboarded(bot, "Ann")
        await ann.send("/rights")
        await ann.tap("🔎 What do you hold about me?")
        confirm = ann.expect("Please check your request")
        assert "The operator answers by 18 Jan 2027 (5 working days)" in confirm.text
    finally:
        await bot.stop()


def warnings(bot: Harness) -> list[str]:
    return [e.text for e in bot.fake.events if e.chat_id == ADMIN_CHAT_ID and "📅" in e.text]


def another_instance(bot: Harness) -> Reminders:
    """A second instance's scheduler on the same database (not started: driven by hand)."""
    app = bot.app
    return Reminders(
        app.sessions, app.clock, app.pack, app.erasure, "ru", time(9, 0), app.campaigns
    )


async def test_staff_are_warned_at_start_and_once_a_day_while_the_gap_lasts(
    bot: Harness, clock: FrozenClock
) -> None:
    await bot.settle()
    # 23 November 2026 + 60 days reach 2027, which neither the package nor the pack has.
    [warning] = warnings(bot)
    assert "Переносы рабочих дней на 2027 год (BY) боту неизвестны" in warning
    assert "bot/packs/calendars/BY.toml" in warning
    await bot.app.reminders.stop()
    assert await bot.app.reminders.warn_calendar() == []  # checked today already
    other = another_instance(bot)
    assert await other.warn_calendar() == []  # another instance's start: the day is told
    clock.advance(datetime(2026, 11, 24, 9, 0, tzinfo=UTC) - clock.now())
    # The next day: the gap lasts, so staff are told again, once for both instances.
    assert await other.warn_calendar() == [("BY", 2027)]
    assert await bot.app.reminders.warn_calendar() == []  # the day is claimed
    assert await other.warn_calendar() == []  # and no second time in a day
    await bot.restart()
    await bot.settle()
    assert len(warnings(bot)) == 2  # a restart the same day does not repeat it
    clock.advance(datetime(2026, 11, 25, 9, 0, tzinfo=UTC) - clock.now())
    await bot.restart()  # a start on a new day warns at once
    await bot.settle()
    assert len(warnings(bot)) == 3


async def test_no_warning_when_the_pack_has_the_year(fake: FakeTelegram, tmp_path: Path) -> None:
    clock = FrozenClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    bot = await Harness(fake, tmp_path, pack=str(pack_with_2027(tmp_path)), clock=clock).start()
    try:
        await bot.settle()
        assert warnings(bot) == []
    finally:
        await bot.stop()


async def test_the_hosting_operator_names_both_authorities_and_takes_99z_terms(
    hosting_bot: Harness,
) -> None:
    ann = await onboarded(hosting_bot, "Ann")
    await ann.send("/privacy")
    notice = ann.expect("Privacy notice of Active Technologies LLC")
    # One heading, both authorities listed under it.
    assert notice.text.count("Where to complain:") == 1
    assert (
        "Where to complain:</b>\n• to the National Personal Data Protection Center"
        in notice.raw["text"]
    )
    assert "\n• to the supervisory authority of the EU member state" in notice.text
    assert "Law of the Republic of Belarus No. 99-Z" in notice.text and "GDPR" in notice.text
    await ann.send("/rights")
    await ann.tap("⚖️ Where to complain")
    screen = ann.expect("Complaint to the supervisory authority").text
    assert "Complaint to the authority\nYou may complain to the National" in screen
    assert "National Personal Data Protection Center" in screen and "https://cpd.by" in screen
    assert "the supervisory authority of the EU member state" in screen and "GDPR Art. 79" in screen
    await ann.send("/rights")
    await ann.tap("🔎 What do you hold about me?")
    confirm = ann.expect("Please check your request")
    assert "The operator answers by 30 Nov 2026 (5 working days)" in confirm.text
    number = await file_erasure(hosting_bot, await onboarded(hosting_bot, "Bob"))
    await hosting_bot.settle()
    [card] = hosting_bot.cards()
    assert f"Заявление №{number} — удаление" in card.text
    assert "Срок: 08.12.2026 (15 календарных дней)" in card.text  # Law 99-Z art. 13


async def test_a_married_minor_consents_alone_at_the_hosting_operator(hosting_bot: Harness) -> None:
    """Law 99-Z applies to the hosting operator: its age gate has the married-minor answer."""
    mia = hosting_bot.user("Mia")
    await mia.send("/start")
    await mia.tap("Under 16, married")
    mia.expect("Privacy notice of")
    menu = mia.expect("What would you like to do?")
    assert "locked" not in menu.text
