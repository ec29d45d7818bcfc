"""The demo shop's offers in Chromium: for a cart worth saving, an exit-intent single-use code shown once and
kept, applied through the shop's discount link, redeemed by the purchase; caps that survive a cleared
browser; a thank-you code for readers who come from the newsletter."""

from __future__ import annotations

import contextlib
import re

import pytest
import redis.asyncio as aioredis
from playwright.async_api import BrowserContext, Error, Page, Response, expect

from server.visitor import state_decoder
from tests.browser.conftest import Shop

DIALOG = "[data-storetag=popup] [role=dialog]"


class OffersSeen:
    """Offers in the server's answers to this page, as the tag receives them."""

    def __init__(self, page: Page) -> None:
        self.offers: list[dict[str, str]] = []
        page.on("response", self._read)

    async def _read(self, response: Response) -> None:
        if response.url.endswith("/v1/events") and response.ok:
            with contextlib.suppress(Error):  # a beacon's answer has no body to read
                answer = await response.json()
                self.offers += [action for action in answer["actions"] if action["kind"] == "offer"]

    async def next(self, page: Page) -> dict[str, str]:
        """The next offer to arrive (within 5 s)."""
        seen = len(self.offers)
        for _ in range(50):
            if len(self.offers) > seen:
                return self.offers[-1]
            await page.wait_for_timeout(100)
        raise AssertionError("no offer in the server's answers")


async def fill_cart_worth_saving(page: Page, shop: Shop) -> dict[str, str]:
    """Socks and a sweater: 54 EUR, past free shipping (no nudge), worth a rescue. Returns the armed offer."""
    seen = OffersSeen(page)
    await page.goto(f"{shop.url}/p/socks-stripe")
    await page.locator("[data-test=add-to-cart]").click()
    await page.goto(f"{shop.url}/p/sweater-merino")
    await page.locator("[data-test=add-to-cart]").click()
    await page.wait_for_url(re.compile(r"/cart$"))
    offer = await seen.next(page)
    assert offer["id"] == "cart_rescue" and offer["code"].startswith("STAY10-")
    return offer


def answers_a_page_view(response: Response) -> bool:
    return response.url.endswith("/v1/events") and '"page_view"' in (response.request.post_data or "")


async def leave_through_the_top(page: Page) -> None:
    await page.wait_for_function("performance.now() > 2100")
    await page.mouse.move(500, 300)
    await page.mouse.move(500, -5)


async def test_an_abandoning_cart_gets_a_code_that_the_purchase_redeems(
    shop: Shop, page: Page, context: BrowserContext, redis: aioredis.Redis
) -> None:
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=shop.url)
    offer = await fill_cart_worth_saving(page, shop)
    await expect(page.locator(DIALOG)).to_have_count(0)  # armed, not shown: the visitor has not left yet

    await leave_through_the_top(page)
    dialog = page.locator(DIALOG)
    await expect(dialog).to_contain_text(offer["code"])
    await expect(dialog.locator("[data-storetag-countdown]")).to_have_text(re.compile(r"^1:59:\d\d$"))
    await dialog.locator("[data-storetag-copy]").click()
    await expect(dialog.locator("[data-storetag-copy]")).to_have_text("Copied!")
    assert await page.evaluate("navigator.clipboard.readText()") == offer["code"]

    await dialog.get_by_text("Apply the code").click()
    await expect(page.locator("[data-test=discount-code]")).to_contain_text(offer["code"])
    await page.locator("[data-test=go-to-checkout]").click()
    await page.locator("[data-test=place-order]").click()
    await page.wait_for_url(re.compile(r"/thank-you"))
    await expect(page.locator(DIALOG)).to_contain_text("Thank you")
    assert await redis.exists(f"st:{{demo}}:redeemed:{offer['code']}")


async def test_the_offer_keeps_its_code_across_reloads_and_shows_once(shop: Shop, page: Page) -> None:
    offer = await fill_cart_worth_saving(page, shop)
    seen = OffersSeen(page)
    await page.reload()
    assert (await seen.next(page))["code"] == offer["code"]

    await leave_through_the_top(page)
    await expect(page.locator(DIALOG)).to_contain_text(offer["code"])
    await page.keyboard.press("Escape")
    # The reloaded page's own answer, not the one to the old page's action_closed, which has no body left.
    async with page.expect_response(answers_a_page_view) as after_show:
        await page.reload()
    assert [a for a in (await (await after_show.value).json())["actions"] if a["kind"] == "offer"] == []


async def test_a_newsletter_reader_lands_on_a_thank_you_code_and_other_visitors_do_not(
    shop: Shop, page: Page, context: BrowserContext
) -> None:
    async with page.expect_response(answers_a_page_view) as plain:
        await page.goto(f"{shop.url}/?utm_source=google")
    assert [a for a in (await (await plain.value).json())["actions"] if a["kind"] == "offer"] == []

    await context.clear_cookies()
    await page.evaluate("localStorage.clear()")
    await page.goto(f"{shop.url}/?utm_source=newsletter&utm_campaign=december")
    dialog = page.locator(DIALOG)
    await expect(dialog).to_contain_text("Thanks for reading our newsletter")
    await expect(dialog.locator("code")).to_have_text(re.compile(r"^NEWS10-"))


# Firefox has no cookieStore: the tag reads document.cookie there.
NO_COOKIE_STORE = 'Object.defineProperty(window, "cookieStore", {value: undefined});'


@pytest.mark.parametrize("cookie_store", [True, False], ids=["cookieStore", "no cookieStore"])
async def test_caps_hold_when_the_visitor_clears_local_storage(
    shop: Shop, page: Page, redis: aioredis.Redis, cookie_store: bool
) -> None:
    if not cookie_store:
        await page.add_init_script(NO_COOKIE_STORE)
    await page.goto(shop.url)
    await page.goto(f"{shop.url}/c/kitchen")
    await expect(page.locator(DIALOG)).to_contain_text("Welcome")
    await page.keyboard.press("Escape")
    visitor = await page.evaluate("localStorage.getItem('storetag.vid')")
    await page.evaluate("localStorage.clear()")
    await page.goto(f"{shop.url}/c/apparel")
    await page.goto(f"{shop.url}/c/stationery")
    await page.wait_for_load_state("networkidle")
    await expect(page.locator(DIALOG)).to_have_count(0)
    assert await page.evaluate("localStorage.getItem('storetag.vid')") == visitor
    state = state_decoder.decode(await redis.get(f"st:{{demo:{visitor}}}:state"))
    assert len(state.actions["welcome"].shown) == 1


# Counts the tag's own reads of the cookie (the stack names its script, /t/SITE.js): synchronous ones by
# document.cookie, asynchronous ones by cookieStore.get.
COUNT_TAG_COOKIE_READS = """
window.__tagCookieReads = {sync: 0, async: 0};
(function () {
  function byTag() {
    return /\\/t\\/[\\w-]+\\.js/.test(new Error().stack || "");
  }
  var cookie = Object.getOwnPropertyDescriptor(Document.prototype, "cookie");
  Object.defineProperty(Document.prototype, "cookie", {
    configurable: true,
    get: function () {
      if (byTag()) window.__tagCookieReads.sync++;
      return cookie.get.call(this);
    },
    set: function (value) {
      cookie.set.call(this, value);
    },
  });
  var get = CookieStore.prototype.get;
  CookieStore.prototype.get = function () {
    if (byTag()) window.__tagCookieReads.async++;
    return get.apply(this, arguments);
  };
})();
"""


# A cookieStore whose get throws (as an opaque origin's would reject): the tag reads document.cookie.
THROWING_COOKIE_STORE = (
    'Object.defineProperty(window, "cookieStore", {value: {get: function () { throw new Error("no"); }}});'
)


@pytest.mark.parametrize(
    ("cookie_store", "first_reads"),
    [
        ("", {"sync": 0, "async": 1}),
        (NO_COOKIE_STORE, {"sync": 1, "async": 0}),
        (THROWING_COOKIE_STORE, {"sync": 1, "async": 0}),
    ],
    ids=["cookieStore", "no cookieStore", "a throwing cookieStore"],
)
async def test_the_tag_reads_the_cookie_only_when_storage_has_no_visitor_and_keeps_both_the_same(
    shop: Shop, context: BrowserContext, page: Page, cookie_store: str, first_reads: dict[str, int]
) -> None:
    """In Chromium a page's first document.cookie read waits on the browser process: a returning
    visitor's pages skip the cookie, and a first visit reads it by the asynchronous cookieStore where
    there is one, while the cookie still holds the id storage holds."""
    await page.add_init_script(COUNT_TAG_COOKIE_READS + cookie_store)
    reads = []
    for path in ("/", "/c/kitchen", "/c/apparel"):
        await page.goto(f"{shop.url}{path}")
        await page.wait_for_load_state("networkidle")
        reads.append(await page.evaluate("window.__tagCookieReads"))
        visitor = await page.evaluate("localStorage.getItem('storetag.vid')")
        cookies = {c["name"]: c["value"] for c in await context.cookies(shop.url)}
        assert cookies["_stvid"] == visitor
    assert reads == [first_reads, {"sync": 0, "async": 0}, {"sync": 0, "async": 0}]
