"""Marketing campaigns: only consenting users, one-tap unsubscribe, rate limits, blocked users,
restarts without double delivery, and only staff may send."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core.clock import FrozenClock
from storage.models import AuditEntry, ConsentEvent, Delivery, User
from tests.fake_telegram import FakeTelegram
from tests.kit import Harness, Person
from tests.test_consents import onboarded

REASON_EN = "You get this message in Telegram because you agreed in this bot to receive marketing"


async def subscriber(bot: Harness, name: str, lang: str = "en") -> Person:
    person = await onboarded(bot, name, lang)
    await person.send("/consents")
    await person.tap("⬜ Marketing messages" if lang == "en" else "⬜ Маркетинговые сообщения")
    await person.tap("✅ I agree" if lang == "en" else "✅ Согласен(на)")
    return person


def campaign_messages(person: Person, fragment: str = "Big sale") -> list[str]:
    return [e.text for e in person.inbox if fragment in e.text]


async def start_campaign(bot: Harness, staff: Person, text: str = "Big sale today") -> None:
    await staff.send(f"/campaign {text}")
    await staff.tap("📤 Отправить")


async def test_campaign_reaches_exactly_the_consenting_users(bot: Harness) -> None:
    ann = await subscriber(bot, "Ann")
    boris = await subscriber(bot, "Борис", lang="ru")
    carl = await onboarded(bot, "Carl")  # never consented
    dora = await subscriber(bot, "Dora")
    await dora.send("/consents")
    await dora.tap("✅ Marketing messages")  # withdrew before the campaign
    kid = bot.user("Kid")
    await kid.send("/start")
    await kid.tap("Under 16")

    staff = bot.staff("Sam")
    await staff.send("/campaign Big sale today", bold="Big sale")
    preview = staff.expect("Получателей с согласием сейчас: 2")
    assert preview.text.endswith("Big sale today")
    await staff.tap("📤 Отправить")
    await bot.app.campaigns.drain()

    [message] = [e for e in ann.inbox if "Big sale" in e.text]
    assert message.text.startswith(REASON_EN)
    assert message.raw["text"].count("<b>Big sale</b>") == 1  # staff formatting kept
    assert [b["text"] for b in message.buttons()] == ["🚫 Unsubscribe"]
    [russian] = campaign_messages(boris)
    assert russian.startswith("Вы получили это сообщение в Telegram, потому что дали")
    assert campaign_messages(carl) == campaign_messages(dora) == campaign_messages(kid) == []
    report = bot.fake.events[-1]
    assert report.chat_id == staff.chat_id
    assert "Рассылка №1 завершена. Отправлено 2, пропущено 0, ошибок 0." in report.text


async def test_unsubscribe_is_one_tap_and_works_after_a_restart(bot: Harness) -> None:
    ann = await subscriber(bot, "Ann")
    staff = bot.staff("Sam")
    await start_campaign(bot, staff)
    await bot.app.campaigns.drain()
    await bot.restart()

    await ann.tap("🚫 Unsubscribe")
    ann.expect("You are unsubscribed from marketing messages")
    edited = next(e for e in ann.last.events if e.kind == "edit")
    assert [b["text"] for b in edited.buttons()] == ["✅ Unsubscribed"]
    await ann.tap("✅ Unsubscribed")
    ann.expect("You are already unsubscribed")
    assert [e.kind for e in ann.last.events] == ["answer"]  # no second message

    async with bot.app.sessions() as session:
        rows = await session.scalars(select(ConsentEvent).where(ConsentEvent.user_id == ann.id))
        assert [(e.granted, e.source) for e in rows] == [(True, "toggle"), (False, "unsubscribe")]

    await start_campaign(bot, staff, "Second offer")
    await bot.app.campaigns.drain()
    assert campaign_messages(ann, "Second offer") == []


async def test_unsubscribing_mid_campaign_stops_further_messages(bot: Harness) -> None:
    ann = await subscriber(bot, "Ann")
    ben = await subscriber(bot, "Ben")
    release = bot.fake.hold(ann.id)

    async def paced(seconds: float) -> None:  # Ben's moment comes when the test says so
        await release.wait()

    bot.app.campaigns.sleep = paced
    bot.app.campaigns.monotonic = lambda: 0.0  # time stands still: Ben's slot is ahead
    bot.app.campaigns.rate = 5  # one claim per send: Ben is checked when his moment comes
    staff = bot.staff("Sam")
    await start_campaign(bot, staff)
    async with asyncio.timeout(10):
        while ann.id not in bot.fake.held:  # noqa: ASYNC110 - the runner is a background task
            await asyncio.sleep(0.01)
    await ben.send("/consents")  # while Ann's message is on its way, Ben withdraws
    await ben.tap("✅ Marketing messages")
    release.set()
    await bot.app.campaigns.drain()
    assert len(campaign_messages(ann)) == 1
    assert campaign_messages(ben) == []
    assert "Отправлено 1, пропущено 1, ошибок 0" in bot.fake.events[-1].text


async def test_flood_limit_and_blocked_users(bot: Harness) -> None:
    ann = await subscriber(bot, "Ann")
    ben = await subscriber(bot, "Ben")
    cleo = await subscriber(bot, "Cleo")
    bot.fake.fail("sendMessage", chat_id=ann.id, status=429, description="Flood", retry_after=1)
    bot.fake.blocked.add(ben.id)
    staff = bot.staff("Sam")
    await start_campaign(bot, staff)
    await bot.app.campaigns.drain()
    assert len(campaign_messages(ann)) == 1  # waited retry_after, then delivered once
    assert len(campaign_messages(cleo)) == 1
    assert "Отправлено 2, пропущено 0, ошибок 1" in bot.fake.events[-1].text
    async with bot.app.sessions() as session:
        blocked = await session.get(User, ben.id)
        assert blocked is not None and blocked.blocked_bot

    await staff.send("/campaign Another")
    staff.expect("Получателей с согласием сейчас: 2")  # Ben is skipped from now on
    bot.fake.blocked.discard(ben.id)
    await ben.send("/start")  # writing to the bot again makes Ben reachable
    await staff.send("/campaign Another")
    staff.expect("Получателей с согласием сейчас: 3")


async def test_restart_mid_campaign_delivers_nobody_twice(bot: Harness) -> None:
    people = [await subscriber(bot, name) for name in ("Ann", "Ben", "Cleo", "Dan")]
    release = bot.fake.hold(people[1].id)
    staff = bot.staff("Sam")
    await start_campaign(bot, staff)
    async with asyncio.timeout(10):
        while people[1].id not in bot.fake.held:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    await bot.restart()  # the process dies while Ben's message is in flight
    release.set()  # ... and Telegram delivers it after all
    await bot.app.campaigns.drain()
    await asyncio.sleep(0.1)
    for person in people:
        assert len(campaign_messages(person)) == 1, person.first_name
    async with bot.app.sessions() as session:
        statuses = list(await session.scalars(select(Delivery.status).order_by(Delivery.id)))
    assert statuses == ["sent", "uncertain", "sent", "sent"]
    report = bot.fake.events[-1].text
    assert "Отправлено 3" in report and "доставка неизвестна, не повторялась): 1" in report


class Crash(BaseException):
    """The process dies here: nothing after this point runs, no handler catches it."""


AFTER_CLAIM = "after the claim is committed, before the calls"
AFTER_CALLS = "after the calls, before their outcomes are committed"


@pytest.mark.parametrize("point", [AFTER_CLAIM, AFTER_CALLS])
async def test_a_crash_at_each_point_sends_nobody_twice_and_counts_the_unknown(
    bot: Harness, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    """Campaign messages are delivered at most once: a delivery the dead process had claimed
    is `uncertain` afterwards (maybe sent, maybe not) and never repeated; the rest go out."""
    from bot.delivery.campaigns import _Run

    people = [await subscriber(bot, name) for name in ("Ann", "Ben", "Cleo", "Dan", "Eve", "Fay")]
    claim, write = _Run._claim, _Run._write

    async def claim_then_die(self):  # type: ignore[no-untyped-def]
        claimed = await claim(self)
        if point == AFTER_CLAIM:
            raise Crash
        return claimed

    async def die_before_writing(self, repo):  # type: ignore[no-untyped-def]
        if point == AFTER_CALLS and self._done:
            raise Crash
        return await write(self, repo)

    monkeypatch.setattr(_Run, "_claim", claim_then_die)
    monkeypatch.setattr(_Run, "_write", die_before_writing)
    staff = bot.staff("Sam")
    await start_campaign(bot, staff)
    with pytest.raises(Crash):
        await bot.app.campaigns.drain()
    bot.app.campaigns._tasks.clear()  # the dead process's task went with it
    monkeypatch.undo()
    await bot.restart()
    await bot.app.campaigns.drain()

    async with bot.app.sessions() as session:
        statuses = list(await session.scalars(select(Delivery.status).order_by(Delivery.id)))
    got = [len(campaign_messages(person)) for person in people]
    # The first batch (5 at 25/s) was claimed by the dead process; the sixth was still pending.
    assert statuses == ["uncertain"] * 5 + ["sent"]
    assert got == ([0] * 5 if point == AFTER_CLAIM else [1] * 5) + [1]
    report = bot.fake.events[-1].text
    assert "Отправлено 1" in report and "доставка неизвестна, не повторялась): 5" in report


async def test_only_staff_may_send(bot: Harness, fake: FakeTelegram) -> None:
    await subscriber(bot, "Ann")
    staff = bot.staff("Sam")
    member = bot.staff("Mallory", status="member")  # in the group, but not an administrator
    await member.send("/campaign Free money")
    member.expect("Это могут делать только сотрудники оператора")
    await staff.send("/campaign Real offer")
    await member.tap("📤 Отправить")
    assert member.expect("Только для сотрудников").show_alert
    await member.tap("✖ Отмена")
    async with bot.app.sessions() as session:
        audit = [
            (a.actor_id, a.action, a.allowed) for a in await session.scalars(select(AuditEntry))
        ]
    assert audit == [
        (member.id, "campaign.create", False),
        (staff.id, "campaign.create", True),
        (member.id, "campaign.send", False),
        (member.id, "campaign.cancel", False),
    ]
    assert not [e for e in fake.events if "Free money" in e.text and e.chat_id != member.chat_id]

    await staff.tap("📤 Отправить")
    await staff.tap_data("v1camp:1:send")  # double tap
    staff.expect("уже в статусе")
    await bot.app.campaigns.drain()


async def test_staff_ids_setting_and_cancel(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock
) -> None:
    harness = Harness(fake, tmp_path, clock=clock, staff_ids="424242", admin_locale="en")
    await harness.start()
    try:
        ann = await subscriber(harness, "Ann")
        outsider = harness.staff("Olga", status="member")
        outsider.id = 424242  # listed in STAFF_IDS, not an administrator
        await outsider.send("/campaign Hello")
        outsider.expect("Recipients who consent right now: 1")
        await outsider.tap("✖ Cancel")
        outsider.expect("Campaign #1 cancelled")
        await outsider.tap_data("v1camp:1:send")
        outsider.expect("already cancelled")
        await outsider.send("/campaign")
        outsider.expect("Send /campaign your text")
        assert campaign_messages(ann, "Hello") == []
    finally:
        await harness.stop()


async def test_campaign_as_a_reply_and_too_long(bot: Harness) -> None:
    await subscriber(bot, "Ann")
    staff = bot.staff("Sam")
    draft = await staff.send("Spring <offer> for everyone")
    assert draft.events == []
    source = bot.fake.messages[
        (staff.chat_id, max(m for c, m in bot.fake.messages if c == staff.chat_id))
    ]
    await bot.feed(
        {
            "message": {
                "message_id": bot.fake.next_message_id(staff.chat_id),
                "date": 0,
                "chat": bot.fake.chats[staff.chat_id],
                "from": staff.as_user(),
                "text": "/campaign",
                "entities": [{"type": "bot_command", "offset": 0, "length": 9}],
                "reply_to_message": source,
            }
        }
    )
    preview = bot.fake.events[-1]
    assert "Spring <offer> for everyone" in preview.text
    await staff.send("/campaign " + "x" * 4050)
    staff.expect("Текст слишком длинный")


async def test_a_user_who_blocks_while_we_answer_is_marked_quietly(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ann = await onboarded(bot, "Ann")
    bot.fake.blocked.add(ann.id)
    await ann.send("/help")
    async with bot.app.sessions() as session:
        user = await session.get(User, ann.id)
        assert user is not None and user.blocked_bot
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
