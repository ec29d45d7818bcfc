"""When the tag starts its work (storage, the cookie, the first batch): in an idle moment after the page's
load event, or 2 s after it ran when the load does not end; a page left before then still delivers its
events by beacon."""

from __future__ import annotations

import json

import redis.asyncio as aioredis
from playwright.async_api import Page, Route

from server.visitor import state_decoder
from tests.browser.conftest import Shop, eventually

# An image that is never answered: the page's load event never comes.
HOLD_THE_LOAD = """
document.addEventListener("DOMContentLoaded", function () {
  var image = new Image();
  image.src = "/never-loads.png";
  document.body.appendChild(image);
});
"""


async def hold_the_load(page: Page) -> None:
    async def never_answer(route: Route) -> None:
        pass

    await page.route("**/never-loads.png", never_answer)
    await page.add_init_script(HOLD_THE_LOAD)


async def test_a_page_whose_load_never_ends_still_sends_its_page_view(shop: Shop, page: Page) -> None:
    await hold_the_load(page)
    async with page.expect_request(
        lambda request: request.url.endswith("/v1/events"), timeout=10_000
    ) as sent:
        await page.goto(f"{shop.url}/p/mug-blue", wait_until="domcontentloaded")
    batch = json.loads((await sent.value).post_data or "{}")
    assert [event["type"] for event in batch["events"]] == ["page_view", "product_view"]
    assert await page.evaluate("document.readyState") == "interactive"


async def test_the_events_of_a_page_left_before_the_tag_started_reach_the_server(
    shop: Shop, page: Page, redis: aioredis.Redis
) -> None:
    await hold_the_load(page)
    await page.route(
        f"{shop.url}/left", lambda route: route.fulfill(body="<p>Left</p>", content_type="text/html")
    )
    await page.goto(f"{shop.url}/p/mug-blue", wait_until="domcontentloaded")
    await page.wait_for_function("typeof window.storetag.track === 'function'")
    assert await page.evaluate("localStorage.getItem('storetag.vid')") is None  # not started yet
    # A page without the tag: only the beacon can have sent them.
    await page.goto(f"{shop.url}/left", wait_until="domcontentloaded")
    visitor = await page.evaluate("localStorage.getItem('storetag.vid')")

    async def products_seen() -> list[str]:
        raw = await redis.get(f"st:{{demo:{visitor}}}:state")
        return list(state_decoder.decode(raw).session.products) if raw else []

    await eventually(products_seen, ["mug-blue"])


# The visitor switches to another tab and back (as Chromium reports it, without a second tab).
HIDE_AND_SHOW = """() => {
  function become(state) {
    Object.defineProperty(document, "visibilityState", {value: state, configurable: true});
    document.dispatchEvent(new Event("visibilitychange"));
  }
  become("hidden");
  become("visible");
}"""


async def test_a_page_hidden_before_the_tag_started_sends_its_page_view_for_an_answer(
    shop: Shop, page: Page
) -> None:
    await hold_the_load(page)
    await page.goto(f"{shop.url}/p/mug-blue", wait_until="domcontentloaded")
    await page.wait_for_function("typeof window.storetag.track === 'function'")
    assert await page.evaluate("localStorage.getItem('storetag.vid')") is None  # not started yet
    async with page.expect_response(lambda response: response.url.endswith("/v1/events")) as answered:
        await page.evaluate(HIDE_AND_SHOW)
    answer = await answered.value
    # A fetch, whose answer arms the page's actions; a beacon's answer is never seen.
    assert answer.request.resource_type == "fetch" and answer.ok
    assert "actions" in await answer.json()
