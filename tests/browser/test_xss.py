"""XSS payloads through every field that reaches HTML: event props rules put into templates, UTM values,
the referrer and landing page, product and cart line names, page titles, search queries, and catalog titles
in recommendation slots (imported, or learnt from a product view). In Chromium none runs, each shows as the
text it is, and a javascript: link a template builds from one is never followed. A new place where strings
reach HTML is one more Sink."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.conftest import AT_ONCE, PageProblems
from tests.browser.page_server import PageServer
from tests.conftest import SITES_FILE, LiveServer, free_port
from tests.wire import batch, event, new_id, post

RULES = Path(__file__).parent / "hardening_rules"
DIALOG = "[data-storetag=popup] [role=dialog]"
# Each sets window.__xss if it ever runs.
PAYLOADS = [
    "<script>window.__xss=1</script>",
    '"><img src=x onerror="window.__xss=1">',
    "'><svg onload=window.__xss=1>",
    "</script><script>window.__xss=1</script>",
    '" autofocus onfocus="window.__xss=1" x="',
    '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    "javascript:window.__xss=1",
    "JaVaScRiPt:window.__xss=1//https://shop.test/",
    "{{7*7}} {% if 1 %}x{% endif %} ${7*7} #{7*7}",
    "&lt;b&gt;already escaped&lt;/b&gt; &amp;",
]
TOKEN = "admin-token-for-tests"
# The page feeds the payload P through the tag: its title, product views (one of a product the catalog
# learns from it), a cart line, a search; and it has a recommendation slot.
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>XSS</title>
<script>window.storetag=window.storetag||function(){{(storetag.q=storetag.q||[]).push(arguments)}};</script>
<script>
var P = window.payload, items = window.items;
document.title = P;
storetag("track", "product_view", {{id: items.imported}});
storetag("track", "product_view", {{id: items.seen, name: P, price: 1}});
storetag("track", "product_view", {{id: "xss-product", name: P, category: P}});
storetag("track", "cart_add", {{id: "xss-line", name: P, category: P, price: 1}});
storetag("track", "search", {{query: P}});
</script>
<script async src="{tag}"></script></head>
<body><h1>XSS payloads</h1><div data-storetag-slot="xss-recs"></div></body></html>"""


@dataclass
class XssSite:
    pages: str
    api: str


@pytest.fixture(scope="module")
def xss_site(redis_url: str) -> Iterator[XssSite]:
    page_port, api_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    pages = PageServer(page_port, lambda path: (PAGE.format(tag=f"{api_url}/t/shop.js"), {}))
    env = {
        "REDIS_URL": redis_url,
        "STORETAG_SITES": str(SITES_FILE),
        "STORETAG_RULES": str(RULES),
        "STORETAG_ALLOWED_ORIGINS": pages.origin,
        **AT_ONCE,
        "STORETAG_ADMIN_TOKEN": TOKEN,
    }
    api = LiveServer(["serve", "--port", str(api_port)], env, api_port)
    try:
        yield XssSite(pages.origin, api_url)
    finally:
        api.stop()
        pages.close()


async def start_session(site: XssSite, visitor: str, payload: str) -> str:
    """What a browser cannot forge, a client posting for this visitor can: a session that landed on a URL
    with the payload in its UTM, from a referrer that is the payload. Returns the landing URL."""
    utm = "&".join(f"utm_{name}={quote(payload, safe='')}" for name in ("source", "medium", "campaign"))
    landing = f"https://shop.test/?{utm}"
    async with httpx.AsyncClient(base_url=site.api) as client:
        response = await post(
            client, batch(event("page_view", url=landing, ref=payload), visitor=visitor), site.pages
        )
    assert response.status_code == 200
    return landing


async def read_popups(page: Page) -> list[dict[str, Any]]:
    """Every echo pop-up, one after another: what each field shows. A dialog with a neutralised link is
    closed by clicking that link, the others with Escape."""
    rendered: list[dict[str, Any]] = []
    for _ in range(4):
        dialog = page.locator(DIALOG)
        await expect(dialog).to_have_count(1)
        rule = await dialog.locator("h2").inner_text()
        rendered += await dialog.locator("li[data-field]").evaluate_all(
            """(items) => items.map((li) => ({
                field: li.dataset.field, text: li.textContent, title: li.title,
                href: li.querySelector("a").getAttribute("href")}))"""
        )
        unlinked = dialog.locator("li[data-field] a:not([href])")
        if await unlinked.count():
            await unlinked.first.click()
        else:
            await page.keyboard.press("Escape")
        await expect(page.locator(DIALOG, has_text=rule)).to_have_count(0)
    return rendered


async def read_slot(page: Page) -> list[dict[str, Any]]:
    """The products drawn in the page's recommendation slot: their titles and links."""
    cards = page.locator("[data-storetag-slot=xss-recs] .st-rec")
    await expect(cards).to_have_count(2)
    return await cards.evaluate_all(
        """(cards) => cards.map((card) => ({
            field: card.querySelector("[data-storetag-item]").dataset.storetagItem.replace(/-\\w+$/, ""),
            text: card.querySelector(".st-rec-title").textContent, title: null,
            href: card.querySelector("a").getAttribute("href")}))"""
    )


async def import_product(site: XssSite, product: str, payload: str) -> None:
    row = {"id": product, "title": payload, "price": 1, "url": "https://shop.test/p/imported"}
    async with httpx.AsyncClient(base_url=site.api) as client:
        imported = await client.post(
            "/v1/admin/sites/shop/catalog",
            content=json.dumps(row),
            headers={"authorization": f"Bearer {TOKEN}"},
        )
    assert imported.json() == {"loaded": 1}


@dataclass(frozen=True)
class Sink:
    """Where fed strings come back as HTML: the fields it renders, and how to read them all back."""

    name: str
    fields: frozenset[str]
    read: Callable[[Page], Awaitable[list[dict[str, Any]]]]


POPUP_FIELDS = {
    "page title", "utm source", "utm medium", "utm campaign", "referrer", "landing page",
    "product name", "product category", "cart line name", "cart line category", "search query",
}  # fmt: skip
# A product's id is its field's name and a random suffix (read_slot takes the suffix off).
SLOT_FIELDS = {"xss-imported", "xss-seen"}
SINKS = [
    Sink("pop-ups", frozenset(POPUP_FIELDS), read_popups),
    Sink("recommendation slots", frozenset(SLOT_FIELDS), read_slot),
]


@pytest.mark.parametrize("sink", SINKS, ids=[sink.name for sink in SINKS])
@pytest.mark.parametrize("payload", PAYLOADS)
async def test_a_payload_in_every_field_shows_as_text_and_never_runs(
    xss_site: XssSite, context: BrowserContext, page: Page, problems: PageProblems, sink: Sink, payload: str
) -> None:
    visitor, suffix = new_id(), new_id()[:8]
    items = {"imported": f"xss-imported-{suffix}", "seen": f"xss-seen-{suffix}"}
    landing = await start_session(xss_site, visitor, payload)
    await import_product(xss_site, items["imported"], payload)
    await context.add_cookies([{"name": "_stvid", "value": visitor, "url": xss_site.pages}])
    await page.add_init_script(f"window.payload = {json.dumps(payload)}; window.items = {json.dumps(items)};")
    await page.goto(f"{xss_site.pages}/xss")

    rendered = await sink.read(page)
    await page.wait_for_function("window.__control === 1")  # the pop-up template's own markup did run
    assert await page.evaluate("window.__xss") is None
    assert {field["field"] for field in rendered} == sink.fields
    for field in rendered:
        expected = landing if field["field"] == "landing page" else payload
        assert field["text"] == expected, field
        assert field["title"] in (None, expected), field
        assert not (field["href"] or "").strip().lower().startswith("javascript:"), field
    assert problems.page_errors == []
