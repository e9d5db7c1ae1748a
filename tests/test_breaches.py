"""Breach duty: /breach records the facts, the authority's deadline from the pack (Law 99-Z: 3
working days; GDPR: 72 hours) in /due and the daily reminder until marked, the draft notice,
telling the affected users at the broadcast rate, and the /breaches register."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.core.clock import FrozenClock
from storage.models import AuditEntry, Breach, BreachNotice, Request, User
from tests.kit import ADMIN_CHAT_ID, Harness
from tests.test_campaigns import subscriber
from tests.test_consents import onboarded
from tests.test_requests import file_erasure

FACTS = """/breach
известно: 27.11.2026 16:00
что: a backup copy was left on a public server for six hours
данные: Telegram IDs, names, consent states
последствия: unwanted messages, phishing attempts
меры: the copy was deleted and access keys replaced
кого: {who}
людей: about 1200
записей: about 5000"""


async def stored_breach(bot: Harness) -> Breach:
    async with bot.app.sessions() as session:
        breach = await session.scalar(select(Breach))
    assert breach is not None
    return breach


async def test_99z_breach_deadline_across_a_weekend_and_the_users_notice(
    bot: Harness, clock: FrozenClock
) -> None:
    await bot.app.reminders.stop()  # the test runs the scheduler's checks itself
    clock.set(datetime(2026, 11, 27, 14, 0, tzinfo=UTC))  # Friday 17:00 in Minsk
    ann = await subscriber(bot, "Ann")  # consented to marketing
    boris = await onboarded(bot, "Борис", lang="ru")
    carl = await subscriber(bot, "Карл", lang="ru")
    dora = await subscriber(bot, "Dora")
    async with bot.app.sessions() as session:  # Carl restricted processing: he is told too
        user = await session.get(User, carl.id)
        assert user is not None
        user.restricted_until = datetime(2027, 1, 1, tzinfo=UTC)
        await session.commit()
    eve = await subscriber(bot, "Eve")  # under a legal hold: told too (GDPR art. 34)
    held = await file_erasure(bot, eve)
    async with bot.app.sessions() as session:
        request = await session.get(Request, held)
        assert request is not None
        request.status, request.hold_until = "blocked", datetime(2027, 6, 1, tzinfo=UTC)
        await session.commit()
    await bot.app.erasure.execute(bot.app.bot, dora.id, cause="test", notice="requests.erased")
    dpo = bot.staff("Dana")
    agent = bot.staff("Alex", status="member")

    await agent.send(FACTS.format(who="все"))
    agent.expect("Попытка записана")  # a breach needs the data-protection officer
    await dpo.send("/breach something happened")
    dpo.expect("Запишите нарушение одним сообщением")
    await dpo.send(FACTS.format(who="согласие marketing"))
    # Known on Friday 27 Nov: Mon 30 (1), Tue 1 Dec (2), Wed 2 Dec (3) — Law 99-Z art. 16.
    record = dpo.expect("Нарушение №1 записано")
    assert (
        "Уведомить уполномоченный орган незамедлительно, не позднее 02.12.2026 23:59" in record.text
    )
    assert "Национальный центр защиты персональных данных Республики Беларусь (3 рабочих дня" in (
        record.text
    )
    # GDPR art. 34(1): the people's own term; without a term in the pack, the authority's.
    assert "Уведомить затронутых незамедлительно, не позднее 02.12.2026 23:59" in record.text
    # Art. 33(3)(a): the approximate numbers of people and records in the draft.
    numbers = "Примерное число затронутых лиц: about 1200; записей персональных данных: about 5000"
    assert numbers in record.text
    assert "Проект уведомления: Национальный центр защиты персональных данных" in record.text
    assert "Оператор: ООО «ЕВДЕЛИКС» (УНП 193688628)" in record.text
    assert "Что произошло: a backup copy was left on a public server" in record.text
    assert "Затронуто субъектов персональных данных: 3." in record.text  # Ann, Carl, Eve
    breach = await stored_breach(bot)
    assert breach.affected == "consent:marketing"

    clock.set(datetime(2026, 11, 30, 6, 0, tzinfo=UTC))  # Monday 09:00: the daily list
    assert await bot.app.reminders.tick()
    await bot.settle()
    reminder = bot.fake.events[-1].text
    assert "Нарушения: уведомить орган (1)" in reminder
    assert "Нарушение №1 — уведомить до 02.12.2026" in reminder

    await dpo.tap("📣 Уведомить затронутых (3)")
    preview = dpo.expect("Предпросмотр того, что получат 3 пользователя")
    assert "Уведомление о нарушении защиты персональных данных" in preview.text
    await dpo.tap("📣 Отправить 3 пользователям")
    await bot.settle()
    told = ann.inbox[-1].text
    for part in (
        "Notice of a personal data breach at EVDELIKS LLC",
        "What happened: a backup copy was left on a public server",
        "Likely consequences: unwanted messages",
        "Measures taken: the copy was deleted",
        "Questions: admin@gybry.com",
        "Where to complain: to the National Personal Data Protection Center",
    ):
        assert part in told, part
    told_ru = carl.inbox[-1].text
    assert "Уведомление о нарушении защиты персональных данных: ООО «ЕВДЕЛИКС»" in told_ru
    assert "Возможные последствия: unwanted messages" in told_ru
    assert "Куда жаловаться: в Национальный центр защиты персональных данных" in told_ru
    assert "Notice of a personal data breach" in eve.inbox[-1].text
    assert not any("breach" in e.text for e in boris.inbox)  # not affected
    await dpo.tap_data("v1breach:1:send")  # once only
    dpo.expect("Уже сделано")

    await dpo.tap("✅ Орган уведомлён")  # a single-law pack: one button, as before
    assert "✅ Уведомлён уполномоченный орган: Национальный центр" in dpo.last.events[-1].text
    await dpo.send("/due")
    dpo.expect_not("Нарушения: уведомить орган")

    await dpo.send("/breaches")
    document = next(e for e in reversed(bot.fake.events) if e.kind == "document")
    assert "Реестр нарушений: 1" in document.text
    rows = list(csv.DictReader(io.StringIO(document.raw["content"].decode())))
    assert sorted(int(r["user_id"]) for r in rows) == sorted([ann.id, carl.id, eve.id])
    assert all(r["delivery"] == "sent" and r["sent"] for r in rows)
    assert rows[0]["authority_notified"]
    assert (rows[0]["people"], rows[0]["records"]) == ("about 1200", "about 5000")
    assert rows[0]["users_due"].startswith("2026-12-02")


async def test_gdpr_breach_deadline_is_72_hours_across_a_weekend(
    gdpr_bot: Harness, clock: FrozenClock
) -> None:
    clock.set(datetime(2026, 11, 27, 14, 0, tzinfo=UTC))
    ann = await onboarded(gdpr_bot, "Ann")
    dpo = gdpr_bot.staff("Dana")
    await dpo.send(FACTS.format(who=f"id {ann.id} 999"))
    # Known at 16:00 Minsk (13:00 UTC) on Friday: 72 hours, weekend included (GDPR art. 33).
    record = dpo.expect("Уведомить надзорный орган незамедлительно, не позднее 30.11.2026 16:00")
    assert "(72 часа с момента, когда стало известно" in record.text
    assert "Затронуто субъектов персональных данных: 1." in record.text  # 999 is unknown
    assert (await stored_breach(gdpr_bot)).authority_due_at == datetime(
        2026, 11, 30, 13, 0, tzinfo=UTC
    )
    clock.advance(timedelta(days=4))
    await dpo.send("/due")
    dpo.expect("⛔ Нарушение №1 — срок уведомления истёк 30.11.2026 16:00")


async def test_a_breach_in_the_future_or_with_unknown_affected_is_refused(
    bot: Harness, clock: FrozenClock
) -> None:
    dpo = bot.staff("Dana")
    await dpo.send(FACTS.format(who="согласие nonsense"))
    dpo.expect("Запишите нарушение")
    clock.set(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))  # before the stated moment
    await dpo.send(FACTS.format(who="все"))
    dpo.expect("Запишите нарушение")
    async with bot.app.sessions() as session:
        assert await session.scalar(select(Breach)) is None
    assert ADMIN_CHAT_ID


async def test_a_belarusian_gdpr_operator_gets_both_deadlines_and_the_peoples_term(
    hosting_bot: Harness, clock: FrozenClock
) -> None:
    """Law 99-Z art. 16 and GDPR art. 33 both apply to the hosting operator: each authority's
    deadline is shown, the earliest is tracked; the people's notice has its own term (art. 34)."""
    clock.set(datetime(2026, 11, 27, 14, 0, tzinfo=UTC))  # Friday 17:00 in Minsk
    ann = await onboarded(hosting_bot, "Ann")
    dpo = hosting_bot.staff("Dana")
    await dpo.send(FACTS.format(who=f"id {ann.id}"))
    record = dpo.expect("Нарушение №1 записано")
    lines = record.text.splitlines()
    # Known 16:00 Friday: 72 hours end Monday 16:00; 3 working days end Wednesday.
    assert "Уведомить надзорный орган незамедлительно, не позднее 30.11.2026 16:00" in lines[1]
    assert "надзорный орган государства — члена ЕС" in lines[1] and "72 часа" in lines[1]
    assert "Уведомить уполномоченный орган незамедлительно, не позднее 02.12.2026 23:59" in lines[2]
    assert "Национальный центр защиты персональных данных" in lines[2]
    assert "Уведомить затронутых незамедлительно, не позднее 30.11.2026 16:00" in lines[3]
    assert "Проект уведомления: Национальный центр защиты персональных данных" in record.text
    # One draft per authority, each with its own deadline; the EU one named as staff address it.
    assert "Проект уведомления: надзорный орган государства — члена ЕС (ведущий" in record.text
    assert (
        "(https://edpb.europa.eu/about-edpb/about-edpb/members_en), не позднее 30.11.2026 16:00"
        in (record.text)
    )
    assert "не позднее 02.12.2026 23:59:\nОператор:" in record.text
    assert record.text.count("Что произошло: a backup copy") == 2
    assert "вашего" not in record.text  # not the person's «по месту вашего жительства»
    breach = await stored_breach(hosting_bot)
    assert breach.authority_due_at == datetime(2026, 11, 30, 13, 0, tzinfo=UTC)  # the earliest
    assert breach.users_due_at == datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
    assert (breach.people, breach.records, breach.delay) == ("about 1200", "about 5000", None)

    clock.advance(timedelta(days=4))  # the people's term has passed: the screen says so
    await dpo.tap("✅ Уведомлён надзорный орган (72 часа)")
    screen = dpo.last.events[-1].text
    assert "⛔ Затронутых нужно было уведомить до 30.11.2026 16:00: ещё не уведомлены." in screen
    await dpo.tap("📣 Уведомить затронутых (1)")
    await dpo.tap("📣 Отправить 1 пользователю")
    dpo.expect("Затронутые уведомлены позже срока (30.11.2026 16:00).")
    await hosting_bot.settle()
    told = ann.inbox[-1].text
    assert "Where to complain:\n• to the National Personal Data Protection Center" in told
    assert "\n• to the supervisory authority of the EU member state" in told


async def test_a_breach_recorded_after_its_deadline_needs_the_reasons_for_the_delay(
    bot: Harness, clock: FrozenClock
) -> None:
    """GDPR art. 33(1), Law 99-Z art. 16: a late notice gives the reasons for the delay."""
    clock.set(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))  # 3 working days from 27 Nov: 2 Dec
    dpo = bot.staff("Dana")
    await dpo.send(FACTS.format(who="все"))
    dpo.expect("Задержка — обязательно, если срок уже прошёл")
    await dpo.send(FACTS.format(who="все") + "\nзадержка: the backup host was found only today")
    record = dpo.expect("Нарушение №1 записано")
    assert "Причины задержки: the backup host was found only today" in record.text
    assert (await stored_breach(bot)).delay == "the backup host was found only today"


async def test_under_two_laws_each_authority_is_marked_notified_on_its_own(
    hosting_bot: Harness, clock: FrozenClock
) -> None:
    """The hosting operator notifies the EU authority (72 hours) and the National Center (3
    working days): marking one leaves the other's deadline on the card, in /due and in the
    daily reminder; a forged authority changes nothing; each mark is audited."""
    bot = hosting_bot
    await bot.app.reminders.stop()  # the test runs the scheduler's checks itself
    clock.set(datetime(2026, 11, 27, 14, 0, tzinfo=UTC))  # Friday 17:00 in Minsk
    ann = await onboarded(bot, "Ann")
    dpo = bot.staff("Dana")
    await dpo.send(FACTS.format(who=f"id {ann.id}"))
    dpo.expect("Нарушение №1 записано")
    card, _ = dpo.button_message("✅ Уведомлён надзорный орган (72 часа)")
    await dpo.tap_data("v1breachlaw:1:nonsense", card)  # forged: not one of the pack's laws
    assert dpo.expect("Эта кнопка больше не действует").show_alert
    await dpo.tap_data("v1breach:1:notified", card)  # an older card's one button: which one?
    assert dpo.expect("Отметьте каждый орган своей кнопкой").show_alert
    async with bot.app.sessions() as session:
        assert await session.scalar(select(BreachNotice)) is None

    await dpo.tap("✅ Уведомлён надзорный орган (72 часа)")  # the EU authority, Saturday
    screen = dpo.last.events[-1].text
    assert "✅ Уведомлён надзорный орган: надзорный орган государства — члена ЕС" in screen
    assert "Уведомить уполномоченный орган незамедлительно, не позднее 02.12.2026 23:59" in screen
    assert "Уведомить надзорный орган" not in screen
    buttons = [b["text"] for b in dpo.last.events[-1].buttons()]
    assert buttons == [
        "✅ Уведомлён уполномоченный орган (3 рабочих дня)",
        "📣 Уведомить затронутых (1)",
    ]
    await dpo.tap_data("v1breachlaw:1:gdpr")  # a second press changes nothing
    dpo.expect("Уже сделано")
    breach = await stored_breach(bot)
    assert breach.authority_notified_at is None
    assert breach.authority_due_at == datetime(2026, 12, 2, 20, 59, 59, tzinfo=UTC)

    clock.set(datetime(2026, 12, 1, 6, 0, tzinfo=UTC))  # Tuesday: past 72 h, not 3 working days
    assert await bot.app.reminders.tick()
    await bot.settle()
    reminder = bot.fake.events[-1].text
    assert "Нарушение №1 — уведомить до 02.12.2026 23:59" in reminder
    clock.set(datetime(2026, 12, 3, 6, 0, tzinfo=UTC))  # Thursday: the 99-Z deadline passed
    await dpo.send("/due")
    dpo.expect("⛔ Нарушение №1 — срок уведомления истёк 02.12.2026 23:59")

    await dpo.tap("✅ Уведомлён уполномоченный орган (3 рабочих дня)")
    screen = dpo.last.events[-1].text
    assert "✅ Уведомлён уполномоченный орган: Национальный центр" in screen
    assert "Уведомить уполномоченный орган" not in screen
    await dpo.send("/due")
    dpo.expect_not("Нарушения: уведомить орган")
    breach = await stored_breach(bot)
    assert breach.authority_notified_at == datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
    async with bot.app.sessions() as session:
        marks = {n.law: n.notified_at for n in await session.scalars(select(BreachNotice))}
        audit = [
            (a.action, a.subject, a.allowed)
            for a in await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
            if a.action == "breach.notified"
        ]
    assert marks == {
        "gdpr": datetime(2026, 11, 27, 14, 0, tzinfo=UTC),
        "by_99z": datetime(2026, 12, 3, 6, 0, tzinfo=UTC),
    }
    assert ("breach.notified", "1:gdpr", True) in audit
    assert ("breach.notified", "1:by_99z", True) in audit
    assert ("breach.notified", "1:nonsense", True) in audit  # the forged press is on record


async def test_a_breach_with_long_facts_fits_one_card(
    hosting_bot: Harness, clock: FrozenClock
) -> None:
    """Two drafts of facts of up to 1000 characters each: shortened to fit Telegram's 4096."""
    clock.set(datetime(2026, 11, 27, 14, 0, tzinfo=UTC))
    dpo = hosting_bot.staff("Dana")
    long = FACTS.format(who="все")
    for field in ("что", "данные", "последствия", "меры", "людей", "записей"):
        long = "\n".join(
            f"{field}: " + "<data> & " * 100 if line.startswith(f"{field}:") else line
            for line in long.splitlines()
        )
    await dpo.send(long + "\nзадержка: " + "x" * 1000)
    record = dpo.expect("Нарушение №1 записано")
    assert len(record.text) <= 4096
    assert "Тексты сокращены" in record.text
    assert "Проект уведомления: надзорный орган государства — члена ЕС (ведущий" in record.text
    assert "Проект уведомления: Национальный центр" in record.text
    assert "Что произошло: &lt;data&gt;" not in record.text  # escaped once, shown as written
    assert "Что произошло: <data> &" in record.text
    assert (await stored_breach(hosting_bot)).what.startswith("<data> & <data>")
