"""What a person reads comes from the operator's policy (issue 20, points 3, 6, 8, 10, 11, 12,
14, 15): the marketing channel the policy allows, processors by name, each right before
consent, the policy before the first question, who is a legal representative, transfers to
the US, no placeholders shown as facts, statutory Russian."""

from __future__ import annotations

import re
import tomllib
from datetime import date, datetime
from pathlib import Path

import pytest

from bot.core.errors import ConfigError
from bot.core.formatting import complaint_screen
from bot.core.i18n import Translator
from bot.core.packs import load_pack, resolved
from bot.core.policy import PolicyPack, RequestType
from bot.telegram.texts.breaches import breach_staff_text
from bot.telegram.texts.consents import consent_info_text
from bot.telegram.texts.notice import help_text, notice_text
from storage.models import Breach, User
from tests.fake_telegram import BOT_USERNAME, FakeTelegram
from tests.kit import ADMIN_CHAT_ID, Harness
from tests.packs import NOT_GIVEN_99Z, filled_99z, write_filled_99z
from tests.test_consents import onboarded

PACKS = ["by_99z_sports", "gdpr_hosting"]
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"  # beside the checkout, if at all
HOSTING_SEED = "000_270ff71c75f3d190.txt"


def info(pack: PolicyPack, purpose_id: str, locale: str) -> str:
    purpose = pack.consent_purpose(purpose_id)
    assert purpose is not None
    return consent_info_text(purpose, pack, Translator(locale), reconfirm=False)


def write(tmp_path: Path, source: str) -> str:
    path = tmp_path / "operator.toml"
    path.write_text(source, "utf-8")
    return str(path)


# Point 3: the marketing channel.


@pytest.mark.parametrize("name", PACKS)
def test_the_marketing_purpose_is_opt_in_and_says_it_is_sent_in_telegram(name: str) -> None:
    pack = load_pack(name)
    assert pack.marketing is not None
    purpose = pack.consent_purpose(pack.marketing.purpose)
    assert purpose is not None and purpose.requires_consent  # GDPR 6(1)(a), 99-Z art. 5
    for locale in ("ru", "en"):
        screen = info(pack, purpose.id, locale)
        assert "Telegram" in screen
        assert "Telegram" in pack.marketing.reason.get(locale)


def test_the_hosting_mailing_in_telegram_is_not_the_policys_e_mail_mailing() -> None:
    pack = load_pack("gdpr_hosting")
    purpose = pack.consent_purpose("mailings")
    assert purpose is not None and purpose.title.ru == "Рассылки в Telegram"
    assert "e-mail" in purpose.description.ru and "только если вы сами" in purpose.description.ru
    # The bot cannot tell a client from anyone else: the reason does not claim it.
    assert pack.marketing is not None and "как клиент" not in pack.marketing.reason.ru


# Point 6: processors by name, country and role, on both screens.


def test_hosting_processors_are_named_with_country_and_role() -> None:
    pack = load_pack("gdpr_hosting")
    named = {
        (p.name.ru, p.country.ru)
        for purpose in pack.purposes
        for p in purpose.processors
        if p.name and p.country
    }
    assert ("VMware", "США") in named and ("Google Inc.", "США") in named
    assert ("ООО «ЯНДЕКС»", "Российская Федерация") in named
    assert ("Microsoft Ireland Operations Limited", "Ирландия") in named


@pytest.mark.skipif(
    not (SEEDS / HOSTING_SEED).is_file(),
    reason="the policy seeds are not in this checkout (they live in the workplace's shared/)",
)
def test_every_hosting_processor_name_is_one_the_seed_gives() -> None:
    seed = (SEEDS / HOSTING_SEED).read_text("utf-8")
    pack = load_pack("gdpr_hosting")
    names = {p.name.ru for purpose in pack.purposes for p in purpose.processors if p.name}
    assert names
    for name in names:
        assert name.split(" ")[0].strip("«»") in seed, name


async def test_the_access_answer_names_the_processors(gdpr_bot: Harness) -> None:
    ann = await onboarded(gdpr_bot, "Ann")
    await ann.send("/rights")
    await ann.tap("🔎 What do you hold about me?")
    await ann.tap("✅ Send the request")
    report = "\n".join(ann.last.texts)
    assert "Processors: VMware (USA) — vendor; Veeam (Switzerland) — vendor" in report
    assert "Google Inc. (USA) — analytics services Google Analytics and Search Console" in report
    assert "(the policy gives no names or countries)" in report  # the banks: category only


async def test_the_99z_screens_mark_processor_names_as_not_given(bot: Harness) -> None:
    ann = await onboarded(bot, "Ann")
    await ann.send("/consents")
    await ann.tap("⬜ Training models on personal data")
    screen = ann.expect("Consent: Training models on personal data")
    assert (
        "Authorised persons (processors): hosting providers and data centres "
        "(the policy gives no names or countries)" in screen.text
    )
    await ann.send("/rights")
    await ann.tap("🔎 What do you hold about me?")
    await ann.tap("✅ Send the request")
    report = "\n".join(ann.last.texts)
    assert "Authorised persons (processors): payment systems (the policy gives no names" in report


def test_a_plain_text_processor_is_a_category_without_name() -> None:
    source = filled_99z()
    pack = PolicyPack.model_validate(resolved(tomllib.loads(source)))
    [hosting, support] = pack.purposes[0].processors
    assert hosting.name is None and hosting.not_given == ["name", "country"]
    assert support.role.en == "support services"


# Point 8: rights before consent, consequences per purpose.


@pytest.mark.parametrize(
    ("name", "purpose", "term", "refused"),
    [
        (
            "by_99z_sports",
            "cross_border",
            "• <b>access</b> — learn whether your data is processed, which data, why, on what "
            "basis, who receives it and how long it is kept. Answer within: 5 working days.",
            "your data is not transferred to authorised persons (processors) in countries without "
            "adequate protection",
        ),
        (
            "gdpr_hosting",
            "mailings",
            "• <b>portability</b> — receive the data you provided in a machine-readable form "
            "(where processing is based on consent or contract). Answer within: 30 calendar "
            "days, at most 1 month.",
            "you get no mailings in Telegram",
        ),
    ],
)
def test_the_consent_screen_explains_each_right_with_its_term(
    name: str, purpose: str, term: str, refused: str
) -> None:
    pack = load_pack(name)
    screen = info(pack, purpose, "en")
    assert term in screen
    for right in pack.rights:
        assert Translator("en")(f"rights.about_{right}") in screen
    assert f"If you refuse or withdraw:</b> {refused}" in screen
    assert "the Service works for you the same way" not in screen


def test_every_consent_purpose_of_the_shipped_packs_says_what_refusing_means() -> None:
    for name in PACKS:
        for purpose in load_pack(name).consent_purposes:
            assert purpose.if_refused is not None, (name, purpose.id)


# Point 10: the policy before the first question.


async def test_the_first_message_links_the_policy_before_any_answer_is_stored(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    bot = Harness(fake, tmp_path, pack=str(write_filled_99z(tmp_path)))
    await bot.start()
    try:
        ann = bot.user("Ann")
        reply = await ann.send("/start")
        [first] = [e for e in reply.events if e.chat_id == ann.id]
        assert "How old are you?" in first.text
        assert "The operator's privacy policy: https://gybry.com/privacy" in first.text
        assert first.buttons()[0] == {"text": "📄 Full policy", "url": "https://gybry.com/privacy"}
        async with bot.app.sessions() as session:
            user = await session.get(User, ann.id)
        assert user is not None and user.age_group is None and user.notice_shown_at is None
    finally:
        await bot.stop()


async def test_without_a_published_policy_the_first_message_says_so(bot: Harness) -> None:
    await first_message_without_policy(bot)


async def test_the_hosting_first_message_says_so_too(gdpr_bot: Harness) -> None:
    await first_message_without_policy(gdpr_bot)


async def first_message_without_policy(bot: Harness) -> None:
    ann = bot.user("Ann")
    await ann.send("/start")
    first = ann.expect("How old are you?")
    assert "The policy gives no address of its full text" in first.text
    assert "has not published" not in first.text  # the seeds say nothing of publishing
    assert all("url" not in b for b in first.buttons())
    assert bot.pack.operator.contacts.email in first.text  # where to ask for it


@pytest.mark.parametrize("pack", ["by_99z_sports", "gdpr_hosting"])
async def test_the_first_message_and_guardian_screen_say_whom_to_ask_for_the_policy(
    fake: FakeTelegram, tmp_path: Path, pack: str
) -> None:
    """Neither seed says the operator has not published its policy (ActiveCloud's is on its
    site): the seed gives no address, and the text is asked from the operator, whose e-mail is
    on the screen itself (the guardian screen has no contacts «выше»)."""
    bot = Harness(fake, tmp_path, pack=pack)
    await bot.start()
    try:
        email = bot.pack.operator.contacts.email
        assert email is not None
        kid = bot.user("Петя", lang="ru")
        await kid.send("/start")
        first = kid.expect("Сколько вам лет?")
        await kid.tap("Младше 16 лет")
        intro = kid.expect(f"https://t.me/{BOT_USERNAME}?start=rep_")
        link = next(w for w in intro.text.split() if w.startswith("https://t.me/"))
        papa = bot.user("Папа", lang="ru")
        await papa.send(f"/start {link.split('?start=')[1]}")
        await papa.tap("Мне 16 лет или больше")
        confirm = papa.expect("Пожалуйста, подтвердите")
        for screen in (first, confirm):
            assert "не опубликовал" not in screen.text and "выше" not in screen.text
            assert "не указан; текст можно запросить у оператора" in screen.text
            assert email in screen.text
    finally:
        await bot.stop()


# Point 11: who is a legal representative; what the confirmation records.


@pytest.mark.parametrize(
    ("locale", "custodian", "consents"),
    [
        ("ru", "опекун или попечитель", "даёте согласие"),
        ("en", "guardian or custodian", "you consent"),
    ],
)
def test_the_representative_texts_name_the_custodian(
    locale: str, custodian: str, consents: str
) -> None:
    t = Translator(locale)
    ask = t("guardian.ask_confirm", minor="Kid", edition="x", link="y")
    for key in ("guardian.minor_intro", "guardian.grant_refused"):
        assert custodian in t(key, age=16, expires="x", link="y")
    assert custodian in ask and consents not in ask
    assert "Telegram ID" in ask  # says exactly what is recorded


# Point 12: transfers to the US.


def test_the_us_transfer_names_the_current_basis_and_the_recipients() -> None:
    pack = load_pack("gdpr_hosting")
    website = pack.purpose("website")
    assert website is not None and website.cross_border is not None
    for locale, framework in (
        ("ru", "Рамочная программа ЕС—США"),
        ("en", "Data Privacy Framework"),
    ):
        transfer = website.cross_border.get(locale)
        assert framework in transfer and "Google Inc." in transfer
        assert "16.07.2020" in transfer  # the Privacy Shield is named only as invalid
        notice = notice_text(pack, Translator(locale))
        assert "Google Inc." in notice and "VMware" in notice and "OpenSRS" in notice


# Point 14: placeholders shown as facts.


def test_the_99z_pack_invents_no_version_date_or_address() -> None:
    pack = load_pack("by_99z_sports")
    assert (pack.policy.effective_date, pack.policy.url) == (None, None)
    assert not pack.version_given and re.fullmatch(
        r"by_99z_sports-[0-9a-f]{12}", pack.policy.version
    )
    for locale in ("ru", "en"):
        notice = notice_text(pack, Translator(locale))
        for invented in ("1.0", "01.01.2025", "gybry.com/privacy", pack.policy.version):
            assert invented not in notice, invented


def test_the_hosting_pack_invents_no_address_and_no_policy_url() -> None:
    pack = load_pack("gdpr_hosting")
    assert pack.operator.address is None and pack.policy.url is None
    assert "operator.address" in pack.not_given and "policy.url" in pack.not_given
    notice = notice_text(pack, Translator("ru"))
    assert "адрес в политике не указан" in notice
    assert "редакция, вступившая в силу 21.10.2020" in notice  # the date the seed gives
    assert "Полный текст: https://www.activecloud.by/" not in notice


def test_the_content_version_follows_the_pack_and_is_stable() -> None:
    source = (Path(__file__).parent.parent / "bot/packs/by_99z_sports.toml").read_text("utf-8")
    first = PolicyPack.model_validate(resolved(tomllib.loads(source))).policy.version
    again = load_pack("by_99z_sports").policy.version
    changed = source.replace("до отзыва согласия", "до отзыва вашего согласия")
    other = PolicyPack.model_validate(resolved(tomllib.loads(changed))).policy.version
    commented = source.replace("[age]\n", "# a comment\n[age]\n")
    same = PolicyPack.model_validate(resolved(tomllib.loads(commented))).policy.version
    assert first == again == same and other != first


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (NOT_GIVEN_99Z, "policy.version"),
        ("[policy]\n", '[policy]\nurl = "https://gybry.com/privacy"\n'),
        (
            '{ role = { ru = "платёжные системы", en = "payment systems" }, '
            'not_given = ["name", "country"] }',
            '{ role = { ru = "платёжные системы", en = "payment systems" } }',
        ),
    ],
)
def test_a_field_is_given_or_marked_not_given(tmp_path: Path, change: str, error: str) -> None:
    source = (Path(__file__).parent.parent / "bot/packs/by_99z_sports.toml").read_text("utf-8")
    if error.startswith("[policy]") or error.startswith("{ role"):
        source, needle = source.replace(change, error), "not_given"
    else:
        source, needle = source.replace(change, ""), error
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_pack(write(tmp_path, source))


async def test_staff_are_told_at_start_which_fields_to_fill_in(bot: Harness) -> None:
    await bot.settle()
    told = [e.text for e in bot.fake.events if e.chat_id == ADMIN_CHAT_ID and "not_given" in e.text]
    assert len(told) == 1
    for field in ("policy.version", "policy.effective_date", "policy.url"):
        assert field in told[0]
    assert "purposes.payments.processors[0]: name, country (payment systems)" in told[0]
    await bot.restart()  # every start tells them again
    await bot.settle()
    again = [e for e in bot.fake.events if e.chat_id == ADMIN_CHAT_ID and "not_given" in e.text]
    assert len(again) == 2


async def test_a_filled_in_pack_tells_staff_nothing(fake: FakeTelegram, tmp_path: Path) -> None:
    bot = Harness(fake, tmp_path, pack=str(write_filled_99z(tmp_path)))
    await bot.start()
    try:
        await bot.settle()
        told = [e for e in bot.fake.events if e.chat_id == ADMIN_CHAT_ID]
        assert any("processors" in e.text for e in told)  # the processors' names still
        assert not any("policy.version" in e.text for e in told)
    finally:
        await bot.stop()


def test_an_announced_version_fills_in_what_the_policy_did_not_give() -> None:
    source = (Path(__file__).parent.parent / "bot/packs/by_99z_sports.toml").read_text("utf-8")
    source = source.replace(
        "[age]\n",
        '[next_policy]\nversion = "2.0"\neffective_date = 2026-12-15\n'
        'url = "https://gybry.com/privacy/2.0"\nchanges = { ru = "Версия.", en = "Version." }\n\n'
        "[age]\n",
    )
    pack = PolicyPack.model_validate(resolved(tomllib.loads(source)))
    current = pack.in_force(date(2026, 12, 15))
    assert current.policy.version == "2.0" and current.version_given
    assert current.not_given == []
    [old] = current.policy.history
    assert old.version == pack.policy.version and old.url is None
    # The running pack becomes it in place on its day, the same way.
    assert pack.advance(datetime(2026, 12, 15, 12, tzinfo=pack.zone))
    assert (pack.policy.version, pack.version_given, pack.missing_fields()[:1]) == (
        "2.0",
        True,
        ["purposes.account.processors[0]: name, country (hosting providers and data centres)"],
    )


# Point 15: statutory Russian.


def test_statutory_russian_wording() -> None:
    t = Translator("ru")
    refused = t(
        "requests.notify_refused",
        id=7,
        type="доступ",
        ground="г",
        article="ст. 11",
        reason="x",
        complaint="",
    )
    assert refused.startswith("В удовлетворении заявления №7 (доступ) отказано на основании")
    assert "не моложе 16 лет" in t("guardian.too_young", age=16)
    assert "в срок, установленный законом" in t("flow.title")
    complaint = complaint_screen(load_pack("by_99z_sports"), t)
    assert "Вы можете обратиться в Национальный центр защиты персональных данных" in complaint
    assert "можно обжаловать в суд" in complaint and "ст. 15 Закона № 99-З" in complaint


def test_the_russian_of_the_second_reading() -> None:
    """A reviewer's slips (issue 20, wording): each as the catalogue and the packs now say it."""
    t = Translator("ru")
    for rule in ("restart", "pause"):
        prompt = t(f"card.prompt_reclarify_{rule}", staff="S", id=1, due="d")
        assert "ответьте причиной: пользователю её не отправляют, она записывается и " in prompt
    assert t("card.extend_unavailable").startswith("Закон, которому подчиняется оператор, не ")
    assert "закон, которому подчиняется оператор, не даёт такого основания" in t(
        "card.rule_no_ground", id=1
    )
    assert "аккаунту Telegram; оператор ответит в срок" in t("flow.title")
    assert t("rights.about_complaint") == "если считаете, что ваши права нарушены."
    assert t("staff.consent_locked", age=18).startswith("Пользователю меньше 18 лет:")
    hosting, sports = load_pack("gdpr_hosting"), load_pack("by_99z_sports")
    screen = complaint_screen(sports, t)
    assert "Вы можете обратиться в Национальный центр защиты персональных данных " in screen
    assert "Республики Беларусь.\nКонтакты:" in screen
    notice = notice_text(hosting, t)
    assert notice.count("Куда жаловаться:") == 1
    assert "Куда жаловаться:</b>\n• в Национальный центр" in notice
    assert "\n• в надзорный орган государства — члена ЕС" in notice
    assert "Срок:" not in notice and "Срок хранения: на время достижения целей" in notice
    assert "Срок хранения: в течение сроков, установленных законодательством" in notice_text(
        sports, t
    )
    mailings = hosting.purpose("mailings")
    assert mailings is not None
    assert "По политике рассылки по e-mail направляются только текущим" in mailings.description.ru
    assert "США — Google Inc. (ныне Google LLC): Рамочная программа" in notice
    grounds = [g.article.ru for g in hosting.refusal_grounds]
    assert "подп. «b» п. 3 ст. 17 GDPR; п. 4 ст. 13 Закона № 99-З" in grounds
    # No English-style citation (“17(3)(b)”) in any Russian text.
    for name in PACKS:
        for ground in load_pack(name).refusal_grounds:
            assert not re.search(r"\d\([0-9a-z]\)", ground.article.ru), (name, ground.id)
    catalogue = (Path(__file__).parent.parent / "locales" / "ru.toml").read_text("utf-8")
    assert not re.search(r"ст\. \d+\(\d", catalogue)


@pytest.mark.parametrize(
    ("name", "authority", "complaint", "processors", "other"),
    [
        (
            "by_99z_sports",
            "уполномоченный орган",
            "уполномоченный орган",
            "Уполномоченные лица",
            ("надзорн", "обработчик"),
        ),
        # Under both laws: each authority by its own law's word; processors as the policy says.
        (
            "gdpr_hosting",
            "надзорный орган",
            "уполномоченный орган или надзорный орган",
            "Обработчики",
            ("уполномоченные лица",),
        ),
    ],
)
def test_each_pack_uses_its_laws_terms(
    name: str, authority: str, complaint: str, processors: str, other: tuple[str, ...]
) -> None:
    pack = load_pack(name)
    t = Translator("ru")
    notice = notice_text(pack, t)
    assert f"жалоба в {complaint}" in notice
    for purpose in pack.consent_purposes:
        screen = info(pack, purpose.id, "ru")
        assert f"жалоба в {complaint}</b> — если считаете" in screen, purpose.id
        if purpose.processors:
            assert f"{processors}:" in screen, purpose.id
        for word in other:
            assert word not in screen.lower(), (purpose.id, word)
    breach = Breach(
        id=1,
        known_at=datetime(2026, 11, 27, tzinfo=pack.zone),
        authority_due_at=datetime(2026, 11, 30, tzinfo=pack.zone),
        what="w",
        categories="d",
        consequences="c",
        measures="m",
        affected="all",
    )
    draft = breach_staff_text(breach, pack, t, affected=1, now=breach.known_at)
    assert f"Уведомить {authority} незамедлительно, не позднее" in draft
    assert " ," not in draft  # no stray space before a comma (no registration number)


@pytest.mark.parametrize("name", PACKS)
def test_help_lists_only_the_requests_the_pack_offers(name: str) -> None:
    pack = load_pack(name)
    text = help_text(pack, Translator("ru"))
    line = next(x for x in text.splitlines() if x.startswith("/rights"))
    assert ("переносимость" in line) == (RequestType.PORTABILITY in pack.rights)
    assert "выгрузка" not in line


@pytest.mark.parametrize("name", PACKS)
def test_the_russian_text_prevails_only_where_the_policy_says_so(name: str) -> None:
    pack = load_pack(name)
    screen = info(pack, pack.consent_purposes[0].id, "en")
    assert ("the Russian text of the policy prevails" in screen) == (name == "by_99z_sports")
    assert "prevail" not in info(pack, pack.consent_purposes[0].id, "ru")


@pytest.mark.parametrize("name", PACKS)
@pytest.mark.parametrize("locale", ["ru", "en"])
def test_no_recipient_is_listed_twice_and_no_contact_doubled(name: str, locale: str) -> None:
    notice = notice_text(load_pack(name), Translator(locale))
    line = next(
        x for x in notice.splitlines() if x.startswith("<b>Кто получает") or "receives" in x
    )
    recipients = line.split("</b> ", 1)[1].rstrip(".").split("; ")
    assert len(recipients) == len(set(recipients))
    stems = [r.split(" — ")[0].split(" (")[0] for r in recipients]
    assert len(stems) == len(set(stems)), stems
    assert notice.count("Контакты:" if locale == "ru" else "Contacts:") == 1
