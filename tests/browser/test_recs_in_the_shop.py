"""Recommendations in the demo shop, in real Chromium: slots filled in shadow roots from other visitors'
traffic, impressions and clicks reported, a purchase after a click credited to its slot."""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx
import redis.asyncio as aioredis
from playwright.async_api import Page, expect

from server.demo.catalog import find_product
from server.demo.tracking import cart_line_props, product_props
from tests.browser.conftest import PageProblems, Shop, eventually

STATS = "st:{demo}:rstat"


async def visit(shop: Shop, *product_ids: str, buy: bool = False) -> None:
    """Another visitor's product pages (and order), sent to the API as the tag would send them."""
    visitor = secrets.token_hex(16)
    products = [find_product(product_id) for product_id in product_ids]
    events: list[dict[str, Any]] = []
    for product in products:
        assert product is not None
        url = f"{shop.url}/p/{product.id}"
        events += [
            {"type": "page_view", "url": url, "props": {"page_type": "product"}},
            {"type": "product_view", "url": url, "props": product_props(product)},
        ]
    if buy:
        items = [cart_line_props(product, 1) for product in products if product]
        value = sum(item["price"] for item in items)
        events.append({"type": "purchase", "props": {"order_id": visitor, "value": value, "items": items}})
    body = {"site": "demo", "visitor": visitor, "session": visitor, "events": events}
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{shop.api.url}/v1/events", json=body, headers={"origin": shop.url})
        assert response.status_code == 200, response.text


async def stat(redis: aioredis.Redis, name: str) -> float:
    value = await redis.hget(STATS, name)
    return float(value) if value else 0.0


def slot(page: Page, name: str, inner: str = "") -> Any:
    # Playwright's CSS locators pierce open shadow roots.
    return page.locator(f"[data-storetag-slot={name}] {inner}".strip())


async def test_a_product_page_shows_what_others_viewed_with_it_and_credits_a_purchase_after_a_click(
    shop: Shop, page: Page, problems: PageProblems, redis: aioredis.Redis
) -> None:
    for _ in range(2):
        await visit(shop, "mug-blue", "coffee-beans")
    await visit(shop, "pen-brass")
    await page.goto(f"{shop.url}/p/mug-blue")
    beans = slot(page, "product_recs", "a[data-storetag-item=coffee-beans]")
    await expect(beans).to_be_visible()
    await expect(slot(page, "product_recs")).to_contain_text("Customers also viewed")
    await expect(slot(page, "product_recs", "[data-storetag-item]")).to_have_count(2)  # beans, then the pen
    await expect(slot(page, "product_recs", "[data-storetag-item=mug-blue]")).to_have_count(0)
    assert await page.evaluate("!!document.querySelector('[data-storetag-slot=product_recs]').shadowRoot")
    await beans.scroll_into_view_if_needed()  # an impression is a list on screen, not below the fold
    await eventually(lambda: stat(redis, "product_recs viewed_together shown"), 1.0)

    await beans.click()
    await page.wait_for_url(re.compile(r"/p/coffee-beans$"))
    await expect(page.locator("[data-storetag=popup] [role=dialog]")).to_be_visible()  # the welcome
    await page.keyboard.press("Escape")
    await page.locator("[data-test=add-to-cart]").click()
    await page.locator("[data-test=go-to-checkout]").click()
    await page.locator("[data-test=place-order]").click()
    await page.wait_for_url(re.compile(r"/thank-you"))
    await eventually(lambda: stat(redis, "product_recs viewed_together orders"), 1.0)
    assert await stat(redis, "product_recs viewed_together clicks") == 1.0
    assert await stat(redis, "product_recs viewed_together revenue") == 14.0
    assert problems.console_errors == [] and problems.page_errors == []


async def test_the_cart_shows_what_was_bought_together_with_its_items(
    shop: Shop, page: Page, problems: PageProblems, redis: aioredis.Redis
) -> None:
    for _ in range(2):
        await visit(shop, "mug-blue", "coffee-beans", buy=True)
    await visit(shop, "socks-stripe", "cap-wool", buy=True)
    await page.goto(f"{shop.url}/p/mug-blue")
    await page.locator("[data-test=add-to-cart]").click()
    await page.wait_for_url(re.compile(r"/cart$"))
    await expect(slot(page, "cart_recs")).to_contain_text("Goes well with your cart")
    first = slot(page, "cart_recs", "[data-storetag-item]").first
    await expect(first).to_have_attribute("data-storetag-item", "coffee-beans")
    await expect(first).to_contain_text("€14.00")
    assert problems.console_errors == [] and problems.page_errors == []


async def test_the_home_page_shows_a_newcomer_what_is_popular_with_pictures_and_links(
    shop: Shop, page: Page, problems: PageProblems, redis: aioredis.Redis
) -> None:
    for _ in range(3):
        await visit(shop, "teapot-clay")
    await visit(shop, "notebook-dot")
    await page.goto(shop.url)
    await expect(slot(page, "home_recs")).to_contain_text("Popular right now")
    teapot = slot(page, "home_recs", "a[data-storetag-item]").first
    await expect(teapot).to_have_attribute("href", f"{shop.url}/p/teapot-clay")
    await expect(teapot.locator("img")).to_have_attribute("src", f"{shop.url}/img/teapot-clay.svg")
    assert await teapot.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    assert problems.console_errors == [] and problems.page_errors == []


async def test_a_slot_stays_empty_and_quiet_on_a_shop_without_traffic(
    shop: Shop, page: Page, problems: PageProblems, redis: aioredis.Redis
) -> None:
    await page.goto(shop.url)
    await page.wait_for_load_state("networkidle")
    assert await page.evaluate("document.querySelector('[data-storetag-slot=home_recs]').shadowRoot") is None
    assert problems.console_errors == [] and problems.page_errors == []
