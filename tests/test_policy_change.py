"""A new policy version: every user is told once, materially changed consents are confirmed
again, earlier versions stay viewable, and staff can tell everyone at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.clock import FrozenClock
from bot.config import ConfigError
from bot.policy import load_pack
from storage.models import ConsentEvent
from tests.fake_telegram import FakeTelegram
from tests.kit import Harness
from tests.test_campaigns import subscriber
from tests.test_consents import onboarded

SHIPPED = Path(__file__).parent.parent / "bot/packs/by_99z_sports.toml"


def version_two(tmp_path: Path) -> Path:
    source = SHIPPED.read_text("utf-8")
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
    old = Harness(fake, tmp_path, clock=clock)
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
        notice = ann.expect("Policy version 2.0")
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
    staff.expect("нет описания изменений для версии 1.0")
    outsider = bot.staff("Eve", status="member")
    await outsider.send("/notify_policy")
    outsider.expect("только сотрудники")


async def test_terms_version_must_be_a_known_version(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        SHIPPED.read_text("utf-8").replace(
            'id = "marketing"\n', 'id = "marketing"\nterms_version = "9"\n'
        ),
        "utf-8",
    )
    with pytest.raises(ConfigError, match="terms_version"):
        load_pack(str(path))
