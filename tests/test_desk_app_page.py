"""The desk page on its own in the system Chromium, against a canned API per the contract:
every view in both themes at a phone's width, filters, search, paging, the actions' forms,
the register form, the card text's HTML kept to Telegram's subset, refusals, no CSP breach.
Screenshots of each view in both themes go to a temp folder (DESK_SCREENSHOTS to keep them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.desk_browser import browser_missing, chromium, desk_url, screenshots_dir, shoot
from tests.desk_fake_api import STAFF, STRANGER, FakeDesk

if reason := browser_missing():
    pytest.skip(reason, allow_module_level=True)

from playwright.async_api import expect  # after the skip: it may be missing

GOOD = "user=staff&hash=good"
OTHER = "user=stranger&hash=good"


@pytest.fixture
async def desk() -> AsyncIterator[tuple[FakeDesk, str]]:
    fake = FakeDesk({GOOD: STAFF, OTHER: STRANGER})
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield fake, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def sel(test: str) -> str:
    return f'[data-test="{test}"]'


async def rows(page: Any) -> list[str]:
    return await page.eval_on_selector_all(sel("request-row"), "rs => rs.map(r => r.dataset.id)")


@pytest.mark.parametrize("theme", ["light", "dark"])
async def test_every_view_in_both_themes(
    desk: tuple[FakeDesk, str], theme: str, tmp_path: Path
) -> None:
    fake, base = desk
    shots = screenshots_dir(tmp_path / "shots")
    async with chromium() as page:
        await page.goto(desk_url(base, GOOD, theme))
        await page.wait_for_selector(sel("request-row"))
        scheme = await page.evaluate("document.documentElement.dataset.scheme")
        assert scheme == theme
        assert len(await rows(page)) == 25
        assert await page.inner_text(sel("count-overdue")) == "6"
        assert "1" in await page.inner_text(sel("page-info"))
        await shoot(page, shots, f"requests-{theme}")
        # The init data rides in the header only, never in a URL.
        assert fake.calls and all(
            "hash" not in path and "user" not in path for _, path in fake.calls
        )

        await page.click(sel("request-row"))
        await page.wait_for_selector(sel("timeline-item"))
        card = page.locator(sel("card-text"))
        assert "Request #" in await card.inner_text()
        assert await card.locator("script, img").count() == 0
        assert await card.locator("b").count() == 1
        assert await page.locator(sel("timeline-item")).count() == 3
        assert await page.locator(sel("checklist-item")).count() == 1
        await shoot(page, shots, f"request-{theme}")

        for view in ("person", "breaches", "figures", "register"):
            await page.click(sel(f"nav-{view}"))
            await page.wait_for_selector(sel(f"view-{view}"))
            if view == "person":
                await page.fill(sel("person-id"), "5003")
                await page.click(sel("person-go"))
                await page.wait_for_selector(sel("person-requests"))
                await page.click(sel("person-requests-row"))  # a request of theirs opens
                await page.wait_for_selector(sel("view-request"))
                await page.click(sel("nav-person"))
                await page.fill(sel("person-id"), "5003")
                await page.click(sel("person-go"))
                await page.wait_for_selector(sel("person-disclosures-row"))
            if view == "breaches":
                await page.wait_for_selector(sel("breach-authorities-row"))
                assert "pending" in await page.inner_text(sel("breach"))
            if view == "figures":
                await page.wait_for_selector("svg" + sel("chart-rate"))
                # 3 bars of rate, 3 of median days, 4 of open by age, 2 of consents
                assert await page.locator(sel("bar")).count() == 12
                assert await page.locator(sel("figures-age-row")).count() == 4
                assert "Erasure" in await page.inner_text(sel("figures-on-time"))
            await shoot(page, shots, f"{view}-{theme}")
        assert not page.problems  # no CSP violation, no script error
    assert ("GET", "/desk/api/people/5003") in fake.calls


async def test_filters_search_and_paging(desk: tuple[FakeDesk, str]) -> None:
    _, base = desk
    async with chromium() as page:
        await page.goto(desk_url(base, GOOD))
        await page.wait_for_selector(sel("request-row"))
        first = await rows(page)
        await page.click(sel("page-next"))
        await expect(page.locator(sel("page-prev"))).to_be_enabled()
        second = await rows(page)
        assert len(second) == 25 and not set(first) & set(second)

        await page.click(sel("filter-overdue"))
        await expect(page.locator(sel("request-row"))).to_have_count(6)
        assert await page.locator("tr.overdue").count() == 6

        await page.click(sel("filter-open"))
        await page.select_option(sel("filter-type"), "erasure")
        await expect(page.locator(sel("request-row"))).to_have_count(15)
        await page.select_option(sel("filter-status"), "in_progress")
        await expect(page.locator(sel("request-row"))).to_have_count(5)

        await page.click(sel("filter-open"))
        await page.fill(sel("search"), "5003")
        await page.click(sel("search-go"))
        await expect(page.locator(sel("request-row"))).to_have_count(9)
        assert await page.locator(sel("request-row")).filter(has_not_text="5003").count() == 0
        await page.fill(sel("search"), "12")
        await page.click(sel("search-go"))
        await expect(page.locator(sel("request-row"))).to_have_count(1)
        await page.fill(sel("search"), "abc")
        await page.click(sel("search-go"))
        await page.wait_for_selector(sel("error"))
        assert not page.problems


async def test_actions_forms_and_register(desk: tuple[FakeDesk, str]) -> None:
    fake, base = desk
    async with chromium() as page:
        await page.goto(desk_url(base, GOOD, start="req_12"))
        view = page.locator(sel("view-request"))
        await view.wait_for()
        assert await view.get_attribute("data-id") == "12"

        assert await page.locator(sel("action-explain")).is_disabled()  # not for this role
        assert await page.locator(sel("role-hint")).count() == 1
        await page.click(sel("action-ask"))
        await page.fill(sel("action-text"), "Which account?")
        await page.click(sel("action-submit"))
        await page.wait_for_selector(sel("outcome"))
        assert fake.posted[-1] == {"action": "ask", "text": "Which account?"}

        await page.select_option(sel("ground-picker"), "1")
        await page.click(sel("action-refuse"))
        await page.fill(sel("action-text"), "Asked five times this week")
        await page.click(sel("action-submit"))
        await expect(page.locator(sel("action-done"))).to_have_count(0)  # decided: no buttons
        assert fake.posted[-1]["ground"] == "excessive"
        assert await page.inner_text(sel("outcome")) == "Request #12: refuse."

        await page.click(sel("nav-register"))
        await page.select_option(sel("reg-type"), "erasure")
        await page.select_option(sel("reg-channel"), "post")
        await page.fill(sel("reg-received"), "2026-11-20")
        await page.fill(sel("reg-identity"), "Signed letter, ID copy checked")
        await page.fill(sel("reg-user"), "5004")
        await page.fill(sel("reg-text"), "Please erase my account.")
        await page.set_input_files(
            sel("reg-file"),
            files=[{"name": "scan.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 scan"}],
        )
        await page.click(sel("reg-submit"))
        await page.wait_for_selector(sel("reg-open"))
        body = fake.posted[-1]
        assert body["type"] == "erasure" and body["channel"] == "post"
        assert body["received_on"] == "2026-11-20" and body["user_id"] == 5004
        assert body["attachment"]["name"] == "scan.pdf" and body["attachment"]["base64"]
        await page.click(sel("reg-open"))
        await page.wait_for_selector('[data-test="view-request"][data-id="61"]')
        assert not page.problems


@pytest.mark.parametrize("init", ["", "user=forged&hash=bad", OTHER])
async def test_refused_without_data(desk: tuple[FakeDesk, str], init: str) -> None:
    fake, base = desk
    async with chromium() as page:
        await page.goto(desk_url(base, init))
        refusal = page.locator(sel("refusal"))
        await refusal.wait_for()
        assert await refusal.get_attribute("data-status") == ("403" if init == OTHER else "401")
        assert await page.locator(sel("request-row")).count() == 0
        assert await page.locator(sel("nav")).is_hidden()
    assert all(path == "/desk/api/me" for _, path in fake.calls)
