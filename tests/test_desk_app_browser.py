"""The desk Mini App in a real browser against the real bot: Debian's Chromium (headless,
through Playwright) opens `/desk/` served by the bot's own web server, with init data signed
for a staff member as Telegram passes it (`#tgWebAppData=...`), while users file requests
through the bot on the fake Bot API. The table lists them, filters and search work, a
request's page shows its timeline, Done from the app completes the request (the user told
once, the card in the group edited), the card and the app deciding at once make one decision,
and forged, expired or non-staff init data shows a refusal and no data. Screenshots of the
views in both themes go to a temp folder (DESK_SCREENSHOTS to keep them)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.service.web import create_web_app
from storage.models import AuditEntry
from tests.desk_browser import browser_missing, chromium, desk_url, screenshots_dir, shoot
from tests.fake_telegram import TOKEN, FakeTelegram
from tests.kit import ADMIN_CHAT_ID, Harness, Person
from tests.test_consents import onboarded
from tests.test_requests import erasure_on_the_desk, file_erasure, stored
from tests.webapp import forged, signed_init_data

if reason := browser_missing():
    pytest.skip(reason, allow_module_level=True)

from playwright.async_api import expect  # after the skip: it may be missing

WEBAPP = "https://desk.example.org"
ERASED = "Your erasure request is done"


class Served:
    """The real bot and its web server on 127.0.0.1."""

    def __init__(self, harness: Harness, base: str, clock: FrozenClock) -> None:
        self.h = harness
        self.base = base
        self.clock = clock

    def init(self, person: Person, age: timedelta = timedelta(0)) -> str:
        return signed_init_data(TOKEN, person.as_user(), self.clock.now() - age)

    def url(self, person: Person, theme: str = "light", start: str | None = None) -> str:
        return desk_url(self.base, self.init(person), theme, start)


@pytest.fixture
async def served(fake: FakeTelegram, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Served]:
    harness = Harness(fake, tmp_path, clock=clock, webapp_url=WEBAPP)
    await harness.start()
    server = TestServer(create_web_app(harness.app), host="127.0.0.1")
    await server.start_server()
    try:
        yield Served(harness, str(server.make_url("")).rstrip("/"), clock)
    finally:
        await server.close()
        await harness.stop()


def sel(test: str) -> str:
    return f'[data-test="{test}"]'


async def row_ids(page: Any) -> list[int]:
    ids = await page.eval_on_selector_all(sel("request-row"), "rs => rs.map(r => r.dataset.id)")
    return [int(i) for i in ids]


async def file_access(person: Person) -> int:
    await person.send("/rights")
    await person.tap("🔎 What do you hold about me?")
    await person.tap("✅ Send the request")
    received = person.expect("received: access")
    return int(received.text.split("#")[1].split()[0])


async def test_the_table_filters_search_and_a_request_page(served: Served, tmp_path: Path) -> None:
    bot = served.h
    ann, bob, cid = [await onboarded(bot, name) for name in ("Ann", "Bob", "Cid")]
    sam = bot.staff("Sam")
    first = await file_erasure(bot, ann)
    second = await file_erasure(bot, bob, "Second")
    third = await file_access(cid)
    await bot.settle()
    shots = screenshots_dir(tmp_path / "shots")

    async with chromium() as page:
        for theme in ("light", "dark"):
            await page.goto("about:blank")  # a new fragment alone would not reload the page
            await page.goto(served.url(sam, theme))
            await expect(page.locator(sel("request-row"))).to_have_count(3)
            await shoot(page, shots, f"bot-requests-{theme}")
        assert sorted(await row_ids(page)) == [first, second, third]
        assert await page.inner_text(sel("count-open")) == "3"
        assert await page.inner_text(sel("count-overdue")) == "0"

        await page.fill(sel("search"), str(bob.id))
        await page.click(sel("search-go"))
        await expect(page.locator(sel("request-row"))).to_have_count(1)
        assert await row_ids(page) == [second]
        await page.fill(sel("search"), str(third))
        await page.click(sel("search-go"))
        await expect(page.locator(sel("request-row"))).to_have_count(1)
        assert await row_ids(page) == [third]

        await page.click(sel("filter-open"))
        await page.select_option(sel("filter-type"), "erasure")
        await expect(page.locator(sel("request-row"))).to_have_count(2)
        await page.click(sel("filter-overdue"))
        await page.wait_for_selector(sel("requests-empty"))

        await page.click(sel("filter-open"))
        await page.click(f'{sel("request-row")}[data-id="{first}"]')
        await page.wait_for_selector('[data-test="timeline-item"][data-kind="filed"]')
        assert f"{first}" in await page.inner_text(sel("card-text"))
        await page.click(sel("action-take"))
        await page.wait_for_selector(sel("outcome"))
        await expect(page.locator(sel("action-take"))).to_have_count(0)
        assert await page.locator(
            '[data-test="timeline-item"][data-kind="staff"], '
            '[data-test="timeline-item"][data-kind="staff_action"]'
        ).count()
        await shoot(page, shots, "bot-request-light")
        await page.goto("about:blank")
        await page.goto(served.url(sam, "dark", start=f"req_{first}"))
        await page.wait_for_selector(sel("timeline-item"))
        await shoot(page, shots, "bot-request-dark")
        assert not page.problems
    assert (await stored(bot, first)).status == "in_progress"


async def test_done_from_the_app_completes_the_request(served: Served) -> None:
    bot = served.h
    ann, sam, number, card = await erasure_on_the_desk(bot)
    async with chromium() as page:
        await page.goto(served.url(sam, start=f"req_{number}"))
        await page.wait_for_selector(sel("action-done"))
        await page.click(sel("action-done"))
        await page.wait_for_selector(sel("outcome"))
        assert not page.problems
    await bot.settle()
    assert sum(ERASED in e.text for e in ann.inbox) == 1
    final = bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]
    assert "Данные заявления удалены" in final["text"] and "reply_markup" not in final


async def test_the_card_and_the_app_at_once_make_one_decision(served: Served) -> None:
    bot = served.h
    ann, sam, number, card = await erasure_on_the_desk(bot)
    async with chromium() as page:
        await page.goto(served.url(sam, start=f"req_{number}"))
        await page.wait_for_selector(sel("action-done"))
        await asyncio.gather(
            sam.tap_data(
                f"v1req:{number}:done", bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]
            ),
            page.click(sel("action-done")),
        )
        outcome = page.locator(sel("outcome"))
        await outcome.wait_for()
        assert await outcome.get_attribute("data-outcome") in ("ok", "decided", "closed")
    await bot.settle()
    assert sum(ERASED in e.text for e in ann.inbox) == 1
    decisions = await audit_rows(bot, "request.done")
    assert len([e for e in decisions if e.allowed]) >= 1


async def audit_rows(bot: Harness, action: str) -> list[AuditEntry]:
    async with bot.app.sessions() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


@pytest.mark.parametrize("kind", ["forged", "expired", "not staff", "none"])
async def test_refused_init_data_shows_no_data(served: Served, kind: str) -> None:
    bot = served.h
    ann = await onboarded(bot, "Ann")
    sam = bot.staff("Sam")
    await file_erasure(bot, ann)
    await bot.settle()
    init = {
        "forged": lambda: forged(served.init(sam)),
        "expired": lambda: served.init(sam, age=timedelta(hours=2)),
        "not staff": lambda: served.init(ann),
        "none": lambda: "",
    }[kind]()
    async with chromium() as page:
        responses: list[str] = []

        async def keep(response: Any) -> None:
            if "/desk/api/" in response.url:
                responses.append(await response.text())

        page.on("response", keep)
        await page.goto(desk_url(served.base, init))
        refusal = page.locator(sel("refusal"))
        await refusal.wait_for()
        expected = "403" if kind == "not staff" else "401"
        if kind == "none":
            expected = "401"
        assert await refusal.get_attribute("data-status") == expected
        assert await page.locator(sel("request-row")).count() == 0
        body = await page.inner_text("body")
        assert "Ann" not in body and "erasure" not in body
        assert all("Ann" not in text and "erasure" not in text for text in responses)


async def views_served(served: Served, staff: Person) -> bool:
    """Whether this build serves the views' API (person, breaches, figures, external)."""
    from aiohttp import ClientSession

    from tests.webapp import HEADER

    async with (
        ClientSession() as http,
        http.get(f"{served.base}/desk/api/breaches", headers={HEADER: served.init(staff)}) as got,
    ):
        return got.status == 200


async def test_person_breaches_figures_and_a_request_registered_in_the_app(
    served: Served, tmp_path: Path
) -> None:
    bot = served.h
    ann = await onboarded(bot, "Ann")
    sam = bot.staff("Sam")
    number = await file_erasure(bot, ann)
    await bot.settle()
    if not await views_served(served, sam):
        pytest.skip("this build does not serve the person, breaches and figures API yet")
    shots = screenshots_dir(tmp_path / "shots")
    async with chromium() as page:
        await page.goto(served.url(sam))
        await page.wait_for_selector(sel("request-row"))
        await page.click(sel("nav-person"))
        await page.fill(sel("person-id"), str(ann.id))
        await page.click(sel("person-go"))
        await expect(page.locator(sel("person-requests-row"))).to_have_count(1)
        await shoot(page, shots, "bot-person-light")
        await page.click(sel("person-requests-row"))
        await page.wait_for_selector(f'[data-test="view-request"][data-id="{number}"]')

        await page.click(sel("nav-breaches"))
        await page.wait_for_selector(f"{sel('breaches-empty')}, {sel('breach')}")
        await page.click(sel("nav-figures"))
        await page.wait_for_selector("svg" + sel("chart-age"))
        await shoot(page, shots, "bot-figures-light")

        await page.click(sel("nav-register"))
        await page.select_option(sel("reg-type"), "access")
        await page.select_option(sel("reg-channel"), "email")
        await page.fill(sel("reg-received"), "2026-11-20")
        await page.fill(sel("reg-identity"), "From the address verified in the account")
        await page.fill(sel("reg-user"), str(ann.id))
        await page.fill(sel("reg-text"), "What data do you hold about me?")
        await page.click(sel("reg-submit"))
        await page.wait_for_selector(sel("reg-open"))
        await page.click(sel("nav-requests"))
        await expect(page.locator(sel("request-row"))).to_have_count(2)
        assert not page.problems
    viewed = await audit_rows(bot, "desk.person")
    assert [e.allowed for e in viewed] == [True]
    assert str(ann.id) in (viewed[0].subject or "")
    assert len(await audit_rows(bot, "request.register_external")) == 1
