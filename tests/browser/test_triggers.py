"""Client-side triggers in real Chromium: the server arms an action, the tag fires it with no round trip,
when it should and not before; a withdrawn or expired action never fires."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Playwright, async_playwright, expect

from tests.conftest import SITES_FILE, LiveServer, free_port

DIALOG = "[data-storetag=popup] [role=dialog]"
RULES = Path(__file__).parent / "trigger_rules"


def page_html(path: str, tag_src: str) -> bytes:
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{path}</title>
<script>window.storetag=window.storetag||function(){{(storetag.q=storetag.q||[]).push(arguments)}};</script>
<script async src="{tag_src}"></script></head>
<body><h1>Trigger page {path}</h1><button id="buy">Buy</button><p><a href="/other">Other page</a></p>
<div style="height:4000px"></div><p id="end">The end</p></body></html>""".encode()


@pytest.fixture(scope="module")
def sites(redis_url: str) -> Iterator[tuple[str, str]]:
    """(page origin, API origin): test pages on one origin, the API with the trigger rules on another."""
    page_port, api_port = free_port(), free_port()
    page_origin = f"http://127.0.0.1:{page_port}"
    api = LiveServer(
        ["serve", "--port", str(api_port)],
        {
            "REDIS_URL": redis_url,
            "STORETAG_SITES": str(SITES_FILE),
            "STORETAG_RULES": str(RULES),
            "STORETAG_ALLOWED_ORIGINS": page_origin,
        },
        api_port,
    )
    tag_src = f"{api.url}/t/shop.js"

    class Pages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page_html(self.path, tag_src)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    pages = ThreadingHTTPServer(("127.0.0.1", page_port), Pages)
    threading.Thread(target=pages.serve_forever, daemon=True).start()
    yield page_origin, api.url
    pages.shutdown()
    pages.server_close()
    api.stop()


async def open_armed(page: Page, url: str) -> None:
    """Loads a page and waits until the tag has the server's answer to its page_view."""
    async with page.expect_response("**/v1/events"):
        await page.goto(url)


async def next_frames(page: Page) -> None:
    await page.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


async def test_delay_fires_after_its_seconds_on_the_page_and_not_before(
    sites: tuple[str, str], page: Page
) -> None:
    await open_armed(page, f"{sites[0]}/delay")
    if await page.evaluate("performance.now() < 1800"):
        await expect(page.locator(DIALOG)).to_have_count(0)
    await expect(page.locator(DIALOG)).to_contain_text("t_delay", timeout=5000)
    assert await page.evaluate("performance.now() >= 2000")


async def test_scroll_fires_past_its_percentage_of_the_page(sites: tuple[str, str], page: Page) -> None:
    await open_armed(page, f"{sites[0]}/scroll")
    await page.evaluate("scrollTo(0, (document.documentElement.scrollHeight - innerHeight) * 0.3)")
    await next_frames(page)
    await expect(page.locator(DIALOG)).to_have_count(0)
    await page.evaluate("scrollTo(0, (document.documentElement.scrollHeight - innerHeight) * 0.6)")
    await expect(page.locator(DIALOG)).to_contain_text("t_scroll")


async def test_idle_fires_only_after_seconds_without_input(sites: tuple[str, str], page: Page) -> None:
    await open_armed(page, f"{sites[0]}/idle")
    await page.evaluate("window.lastInput = performance.now()")
    for step in range(6):  # three seconds of moving the pointer: never idle for two
        await page.mouse.move(100 + step * 10, 100)
        await page.evaluate("window.lastInput = performance.now()")
        await page.wait_for_timeout(500)
        await expect(page.locator(DIALOG)).to_have_count(0)
    await expect(page.locator(DIALOG)).to_contain_text("t_idle", timeout=5000)
    assert await page.evaluate("performance.now() - window.lastInput >= 1900")


async def test_click_fires_when_the_visitor_clicks_a_matching_element(
    sites: tuple[str, str], page: Page
) -> None:
    await open_armed(page, f"{sites[0]}/click")
    await page.click("h1")
    await next_frames(page)
    await expect(page.locator(DIALOG)).to_have_count(0)
    await page.click("#buy")
    await expect(page.locator(DIALOG)).to_contain_text("t_click")


SWITCH_TAB = """
Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "STATE"});
document.dispatchEvent(new Event("visibilitychange"));
"""


async def wait_past_arrival(page: Page) -> None:
    await page.wait_for_function("performance.now() > 2100")


async def test_desktop_exit_intent_fires_when_the_pointer_leaves_through_the_top(
    sites: tuple[str, str], page: Page
) -> None:
    await open_armed(page, f"{sites[0]}/exit")
    await page.mouse.move(400, 300)
    await page.mouse.move(400, 400)
    await page.mouse.move(400, 900)  # down and out through the bottom: not an exit
    await next_frames(page)
    await expect(page.locator(DIALOG)).to_have_count(0)
    await wait_past_arrival(page)
    await page.mouse.move(400, 200)
    await page.mouse.move(400, -5)
    await expect(page.locator(DIALOG)).to_contain_text("t_exit")


async def test_desktop_exit_intent_does_not_fire_on_arrival(sites: tuple[str, str], page: Page) -> None:
    await open_armed(page, f"{sites[0]}/exit")
    await page.mouse.move(400, 200)
    await page.mouse.move(400, -5)
    await next_frames(page)
    if await page.evaluate("performance.now() < 1900"):
        await expect(page.locator(DIALOG)).to_have_count(0)


@pytest.fixture(scope="module")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as playwright:
        yield playwright


@pytest.fixture
async def phone(browser: Browser, playwright: Playwright) -> AsyncIterator[Page]:
    context = await browser.new_context(**playwright.devices["Pixel 7"])
    page = await context.new_page()
    yield page
    await context.close()


async def test_mobile_exit_intent_fires_on_a_fast_scroll_up_after_reading_down(
    sites: tuple[str, str], phone: Page
) -> None:
    await open_armed(phone, f"{sites[0]}/exit")
    await wait_past_arrival(phone)
    for y in range(0, 2400, 300):  # reading down, slowly
        await phone.evaluate(f"scrollTo(0, {y})")
        await next_frames(phone)
    await expect(phone.locator(DIALOG)).to_have_count(0)
    await phone.evaluate("scrollTo(0, 0)")
    await expect(phone.locator(DIALOG)).to_contain_text("t_exit")


async def test_mobile_exit_intent_catches_the_back_button_once_and_then_back_works(
    sites: tuple[str, str], phone: Page
) -> None:
    await phone.goto("about:blank")
    await open_armed(phone, f"{sites[0]}/exit")
    await wait_past_arrival(phone)
    await phone.go_back()
    await expect(phone.locator(DIALOG)).to_contain_text("t_exit")
    assert phone.url.endswith("/exit")
    await phone.locator("[data-storetag=popup] button[aria-label=Close]").click()
    await phone.go_back()
    await phone.wait_for_url("about:blank")


async def test_mobile_exit_intent_fires_when_the_visitor_comes_back_to_the_tab(
    sites: tuple[str, str], phone: Page
) -> None:
    await open_armed(phone, f"{sites[0]}/exit")
    await wait_past_arrival(phone)
    # Headless Chromium keeps every tab visible, so the tab switch is played through the document.
    await phone.evaluate(SWITCH_TAB.replace("STATE", "hidden"))
    await next_frames(phone)
    await expect(phone.locator(DIALOG)).to_have_count(0)
    await phone.evaluate(SWITCH_TAB.replace("STATE", "visible"))
    await expect(phone.locator(DIALOG)).to_contain_text("t_exit")


async def test_an_action_withdrawn_by_a_later_answer_never_fires(sites: tuple[str, str], page: Page) -> None:
    await open_armed(page, f"{sites[0]}/withdrawn")
    async with page.expect_response("**/v1/events") as answer:
        await page.evaluate("storetag.track('cart_add', {id: 'mug', price: 5})")
    # The batch names what the page holds armed, and the answer withdraws among those only.
    held = json.loads((await answer.value).request.post_data or "{}")["armed"]
    withdrawn = (await (await answer.value).json())["withdraw"]
    assert "t_withdrawn" in held and "t_withdrawn" in withdrawn and set(withdrawn) <= set(held)
    await page.wait_for_function("performance.now() > 3000")
    await expect(page.locator(DIALOG)).to_have_count(0)


async def test_an_expired_action_never_fires(sites: tuple[str, str], page: Page) -> None:
    await open_armed(page, f"{sites[0]}/expiring")
    await page.wait_for_function("performance.now() > 4000")
    await expect(page.locator(DIALOG)).to_have_count(0)


async def test_of_two_rules_competing_for_the_modal_only_the_higher_priority_shows(
    sites: tuple[str, str], page: Page
) -> None:
    async with page.expect_response("**/v1/events") as answer:
        await page.goto(f"{sites[0]}/compete")
    # The loser is not sent at all (and, shown `now` or never, nothing of it is armed to withdraw).
    assert [action["id"] for action in (await (await answer.value).json())["actions"]] == ["t_compete_high"]
    await expect(page.locator(DIALOG)).to_contain_text("t_compete_high")
    await page.keyboard.press("Escape")
    await page.wait_for_load_state("networkidle")
    await expect(page.locator(DIALOG)).to_have_count(0)
