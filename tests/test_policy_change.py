"""A new policy version: every user is told once, materially changed consents are confirmed
again, earlier versions stay viewable, and staff can tell everyone at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.core.errors import ConfigError
from bot.core.packs import load_pack
from storage.models import ConsentEvent
from tests.fake_telegram import FakeTelegram
from tests.kit import Harness
from tests.packs import filled_99z, write_filled_99z
from tests.test_campaigns import subscriber
from tests.test_consents import onboarded


def version_two(tmp_path: Path) -> Path:
    source = filled_99z()
    source = source.replace(
        'url = "https://gybry.com/privacy"\n',
        'url = "https://gybry.com/privacy"\n'
        'changes = { ru = "Маркетинг теперь включает push-уведомления.", '
        'en = "Marketing now includes push notifications." }\n'
        'history = [{ version = "1.0", effective_date = 2025-01-01, '
        'url = "https://gybry.com/privacy/1.0" }]\n',
    )
    source = source.replace(
        'version = "1.0"\neffective_date = 2025-01-01',
        'version = "2.0"\neffective_date = 2026-12-01',
    )
    source = source.replace('id = "marketing"\n', 'id = "marketing"\nterms_version = "2.0"\n')
    path = tmp_path / "v2.toml"
    path.write_text(source, "utf-8")
    return path


async def test_policy_change_end_to_end(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock
) -> None:
    old = Harness(fake, tmp_path, clock=clock, pack=str(write_filled_99z(tmp_path)))
    await old.start()
    ann = await subscriber(old, "Ann")
    await ann.send("/consents")
    await ann.tap("⬜ Training models on personal data")
    await ann.tap("✅ I agree")
    boris = await onboarded(old, "Борис", lang="ru")
    await old.stop()

    bot = Harness(fake, tmp_path, clock=clock, pack=str(version_two(tmp_path)))
    await bot.start()
    try:
        staff = bot.staff("Sam")
        await staff.send("/campaign Offer")
        staff.expect("Получателей с согласием сейчас: 0")  # v1.0 marketing consent is not enough

        ann.h = boris.h = bot
        await ann.send("/help")
        change = ann.expect("The privacy policy has changed: version 2.0 of 01 Dec 2026.")
        assert "What changed: Marketing now includes push notifications." in change.text
        assert "Some consents need your confirmation again" in change.text
        notice = ann.expect("Privacy policy: version 2.0")
        assert [b["text"] for b in notice.buttons()] == [
            "📄 Full policy",
            "📄 Version 1.0 (01 Jan 2025)",
        ]
        ann.expect("What I can do")  # and the command itself is answered
        await ann.send("/help")
        ann.expect_not("The privacy policy has changed")  # told once

        await ann.send("/consents")
        listing = ann.expect("⚠️ Marketing messages: the terms changed")
        assert "✅ Training models on personal data: on since" in listing.text
        await ann.tap("⚠️ Marketing messages")
        ann.expect("The terms of this consent changed in policy version 2.0")
        await ann.tap("✅ I agree")
        ann.expect("✅ Marketing messages: on since")
        async with bot.app.sessions() as session:
            last = await session.scalar(
                select(ConsentEvent)
                .where(ConsentEvent.user_id == ann.id)
                .order_by(ConsentEvent.id.desc())
            )
        assert last is not None
        assert (last.source, last.policy_version, last.granted) == ("reconsent", "2.0", True)

        await staff.send("/campaign Offer")
        staff.expect("Получателей с согласием сейчас: 1")

        await staff.send("/notify_policy")
        staff.expect("Пользователей, ещё не уведомлённых о версии 2.0: 1")  # Boris only
        await staff.tap("📤 Отправить")
        await bot.app.campaigns.drain()
        told = boris.inbox[-1]
        assert told.text.startswith("Политика конфиденциальности изменилась: версия 2.0")
        assert "Маркетинг теперь включает push-уведомления." in told.text
        assert "Отправлено 1, пропущено 0, ошибок 0" in bot.fake.events[-1].text
        await boris.send("/help")
        boris.expect_not("Политика конфиденциальности изменилась")
    finally:
        await bot.stop()


async def test_notify_policy_without_a_change_note(bot: Harness) -> None:
    staff = bot.staff("Sam")
    await staff.send("/notify_policy")
    staff.expect(f"нет описания изменений для версии {bot.pack.policy.version}")
    outsider = bot.staff("Eve", status="member")
    await outsider.send("/notify_policy")
    outsider.expect("только сотрудники")


async def test_terms_version_must_be_a_known_version(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        filled_99z().replace('id = "marketing"\n', 'id = "marketing"\nterms_version = "9"\n'),
        "utf-8",
    )
    with pytest.raises(ConfigError, match="terms_version"):
        load_pack(str(path))


def announced(tmp_path: Path) -> Path:
    """Version 1.0 with version 1.1 announced for 15 December 2026."""
    source = filled_99z().replace(
        "[age]\n",
        "[next_policy]\n"
        'version = "1.1"\n'
        "effective_date = 2026-12-15\n"
        'url = "https://gybry.com/privacy/1.1"\n'
        'changes = { ru = "Добавлен новый обработчик рассылок.", '
        'en = "A new mailing processor is added." }\n\n'
        "[age]\n",
    )
    path = tmp_path / "announced.toml"
    path.write_text(source, "utf-8")
    return path


async def test_the_next_version_is_announced_before_it_takes_effect(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock
) -> None:
    before = Harness(fake, tmp_path, clock=clock, pack=str(write_filled_99z(tmp_path)))
    await before.start()
    ann = await onboarded(before, "Ann")
    boris = await onboarded(before, "Борис", lang="ru")
    await before.stop()

    bot = Harness(fake, tmp_path, clock=clock, pack=str(announced(tmp_path)))
    await bot.start()
    try:
        ann.h = boris.h = bot
        assert bot.app.pack.policy.version == "1.0"  # 23 Nov: not yet in force
        await bot.app.reminders.announce(bot.app.bot)  # or the scheduler was first
        assert await bot.app.reminders.announce(bot.app.bot) is None  # once per version
        await bot.settle()
        told = ann.inbox[-1]
        assert "version 1.1 takes effect on 15 Dec 2026" in told.text
        assert "What changed: A new mailing processor is added." in told.text
        assert "you may stop using the service and exercise your rights" in told.text
        assert told.buttons()[0]["url"] == "https://gybry.com/privacy/1.1"
        assert "версия 1.1 вступает в силу 15.12.2026" in boris.inbox[-1].text
        assert "вправе прекратить пользоваться сервисом" in boris.inbox[-1].text
        await ann.send("/help")
        ann.expect_not("The privacy policy has changed")  # 1.0 is still the policy
        carl = await onboarded(bot, "Carl")  # joins after the announcement: the notice says it
        carl.expect("Version 1.1 takes effect on 15 Dec 2026: A new mailing processor")
        clock.set(clock.now().replace(month=12, day=15))  # this process started before the day
        await ann.send("/help")  # the first update of the day applies the new version
        ann.expect("The privacy policy has changed: version 1.1 of 15 Dec 2026.")
        assert bot.app.pack.policy.version == "1.1"
        assert bot.app.pack.policy.history[-1].version == "1.0"
        assert await bot.app.reminders.announce(bot.app.bot) is None
        assert await bot.app.reminders.announce(bot.app.bot) is None  # staff are told once
        await bot.settle()
        told = [e.text for e in bot.fake.events if "действует с сегодняшнего дня" in e.text]
        assert told == [
            "📢 Версия политики 1.1 действует с сегодняшнего дня, и бот уже применяет её: "
            "пользователи узнают об изменениях при следующем обращении и при необходимости "
            "подтвердят согласия снова."
        ]
        clock.set(clock.now().replace(month=11, day=23))
    finally:
        await bot.stop()
    assert load_pack(str(announced(tmp_path))).policy.version == "1.0"  # the file's pack stays

    clock.set(clock.now().replace(month=12, day=15))
    bot = Harness(fake, tmp_path, clock=clock, pack=str(announced(tmp_path)))
    await bot.start()
    try:
        assert bot.app.pack.policy.version == "1.1"
        assert bot.app.pack.policy.history[-1].version == "1.0"
        assert await bot.app.reminders.announce(bot.app.bot) is None
        await bot.settle()
        assert len([e for e in bot.fake.events if "действует с сегодняшнего" in e.text]) == 1
        boris.h = bot
        await boris.send("/help")
        boris.expect("Политика конфиденциальности изменилась")
    finally:
        await bot.stop()
