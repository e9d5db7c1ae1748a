"""/stats: requests by type and month, on-time share, median days to close, overdue now, consent
rates over time, campaigns and unsubscribes; a PNG chart and a text summary."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.core.clock import FrozenClock
from bot.domain.stats import ClosedRequest, LedgerEvent, consent_rates, parse_period, punctuality
from tests.fake_telegram import FakeTelegram
from tests.kit import ADMIN_CHAT_ID, Harness, Person
from tests.test_campaigns import start_campaign, subscriber
from tests.test_consents import onboarded

ROOT = Path(__file__).resolve().parent.parent
ZONE = ZoneInfo("Europe/Minsk")


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T12:00:00+00:00").astimezone(UTC)


async def file_access(bot: Harness, person: Person) -> int:
    await person.send("/rights")
    russian = person.lang == "ru"
    await person.tap(
        "🔎 Какие данные обо мне есть?" if russian else "🔎 What do you hold about me?"
    )
    await person.tap("✅ Отправить заявление" if russian else "✅ Send the request")
    await bot.settle()
    return len(bot.cards())


async def done(bot: Harness, staff: Person, number: int) -> None:
    card = bot.cards()[number - 1]
    await staff.tap_data(
        f"v1req:{number}:done", bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]
    )
    await bot.settle()


def test_periods() -> None:
    now = at("2026-11-23")
    assert parse_period("", now, ZONE).months[0] == (2026, 6)  # type: ignore[union-attr]
    period = parse_period("3m", now, ZONE)
    assert period is not None and period.months == [(2026, 9), (2026, 10), (2026, 11)]
    assert period.start == datetime(2026, 9, 1, tzinfo=ZONE)
    assert period.end == datetime(2026, 12, 1, tzinfo=ZONE)
    assert parse_period("2025", now, ZONE).months[-1] == (2025, 12)  # type: ignore[union-attr]
    assert parse_period("2026-02", now, ZONE).months == [(2026, 2)]  # type: ignore[union-attr]
    for bad in ("0m", "37m", "2026-13", "soon", "12"):
        assert parse_period(bad, now, ZONE) is None, bad


def test_punctuality_and_consent_rates() -> None:
    months = [(2026, 9), (2026, 10)]
    closed = [
        ClosedRequest(at("2026-09-01"), at("2026-09-20"), at("2026-09-03")),
        ClosedRequest(at("2026-09-01"), at("2026-09-20"), at("2026-10-01")),
        ClosedRequest(at("2026-10-01"), at("2026-10-20"), at("2026-10-11")),
    ]
    count, on_time, shares, median = punctuality(closed, months, ZONE)
    assert (count, on_time, median) == (3, 2, 10.0)
    assert shares == {(2026, 9): 1.0, (2026, 10): 0.5}
    events = [
        LedgerEvent(1, "marketing", True, at("2026-09-05")),
        LedgerEvent(2, "marketing", True, at("2026-10-05")),
        LedgerEvent(1, "marketing", False, at("2026-10-06")),
    ]
    rates = consent_rates(events, [at("2026-09-01"), at("2026-09-02")], ["marketing"], months, ZONE)
    assert rates == {"marketing": {(2026, 9): 0.5, (2026, 10): 0.5}}


def test_matplotlib_is_not_imported_at_start_up() -> None:
    """No module of the bot imports the plotting library at module level."""
    for path in [
        *ROOT.glob("bot/**/*.py"),
        *ROOT.glob("handlers/**/*.py"),
        *ROOT.glob("storage/**/*.py"),
    ]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "matplotlib" for n in names), path


async def test_stats_from_the_staffs_side(bot: Harness, clock: FrozenClock) -> None:
    staff = bot.staff("Sam")
    clock.set(at("2026-09-10"))
    ann = await subscriber(bot, "Ann")
    first = await file_access(bot, ann)
    clock.set(at("2026-09-12"))
    await done(bot, staff, first)  # 2 days, on time
    overdue = await file_access(bot, ann)  # a second one only once the first is closed
    clock.set(at("2026-10-05"))
    boris = await onboarded(bot, "Борис", "ru")
    late = await file_access(bot, boris)
    clock.set(at("2026-11-20"))
    await done(bot, staff, late)  # 46 days, late
    clock.set(at("2026-11-23"))
    carl = await onboarded(bot, "Carl")
    await file_access(bot, carl)
    await start_campaign(bot, staff)
    await bot.settle()
    await ann.tap("🚫 Unsubscribe")

    await staff.send("/stats soon")
    staff.expect("/stats 12m")
    await staff.send("/stats 3m")
    [photo] = [e for e in staff.last.events if e.kind == "photo"]
    assert photo.raw["content"].startswith(b"\x89PNG") and len(photo.raw["content"]) > 5000
    assert "09.2026 — 11.2026" in photo.text
    summary = "\n".join(e.text for e in staff.last.events if e.kind == "message")
    for line in (
        "Статистика за 09.2026 — 11.2026",
        "Получено: 4 заявления (доступ 4)",
        "09.2026: 2 · 10.2026: 1 · 11.2026: 1",
        "Закрыто: 2, в срок: 50%",
        "Медиана до закрытия: 24 дня",
        "Просрочено сейчас: 1 заявление",
        "• Маркетинговые сообщения: 100% → 50% → 0%",
        "Рассылок отправлено: 1, доставлено сообщений: 1",
        "Отписок: 1",
    ):
        assert line in summary, summary
    assert overdue == 2


async def test_stats_in_english(fake: FakeTelegram, tmp_path: Path, clock: FrozenClock) -> None:
    bot = Harness(fake, tmp_path, clock=clock, admin_locale="en")
    await bot.start()
    try:
        staff = bot.staff("Sam")
        ann = await onboarded(bot, "Ann")
        await file_access(bot, ann)
        await staff.send("/stats 2026-11")
        [photo] = [e for e in staff.last.events if e.kind == "photo"]
        assert "Requests per month and the share answered on time, 11/2026" in photo.text
        staff.expect("Received: 1 request (access 1)")
        staff.expect("Closed: 0, on time: —")
        agent = bot.staff("Alex", status="member")
        await staff.send(f"/role {agent.id} marketing")
        await agent.send("/stats")
        agent.expect("This needs the role DPO or agent")
    finally:
        await bot.stop()
