"""Faults seen from a real Chromium: with Redis down the shop shows no tag error and the tag keeps its
batches until they can be delivered; a batch in flight when the server is SIGKILLed is delivered once the
server is back, and counted once."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from playwright.async_api import Page

from server.state import visitor_key
from server.visitor import VisitorState, state_decoder
from tests.browser.conftest import PageProblems, eventually
from tests.browser.page_server import PageServer
from tests.conftest import SITES_FILE, LiveServer, free_port
from tests.fault.redis_server import AOF_EVERYSEC, RedisServer

FAULT_RULES = Path(__file__).parent / "fault_rules"
DEGRADED_CONSOLE_ERROR = "Failed to load resource: the server responded with a status of 503"


async def kept_batches(page: Page) -> list[dict[str, object]]:
    """The batches in the tag's retry queue, oldest first."""
    kept = await page.evaluate("JSON.parse(localStorage.getItem('storetag.retry') || '[]')")
    return [json.loads(entry["body"]) for entry in kept]


async def kept_count(page: Page) -> int:
    return len(await kept_batches(page))


async def state_of(redis: aioredis.Redis, site: str, page: Page) -> VisitorState:
    visitor = await page.evaluate("localStorage.getItem('storetag.vid')")
    raw = await redis.get(visitor_key(site, visitor, "state"))
    return state_decoder.decode(raw) if raw else VisitorState()


async def ready(api: LiveServer) -> bool:
    async with httpx.AsyncClient(base_url=api.url) as client:
        return (await client.get("/readyz")).status_code == 200


@dataclass
class DemoShop:
    url: str
    api: LiveServer
    redis: RedisServer


@pytest.fixture
def demo_shop(tmp_path: Path) -> Iterator[DemoShop]:
    """The demo shop and its API on a Redis of this test's own, which keeps its data across restarts."""
    redis_server = RedisServer(tmp_path, *AOF_EVERYSEC)
    shop_port, api_port = free_port(), free_port()
    shop_url = f"http://127.0.0.1:{shop_port}"
    env = {"REDIS_URL": redis_server.url, "STORETAG_ALLOWED_ORIGINS": shop_url}
    try:
        api = LiveServer(["demo", "--port", str(shop_port), "--api-port", str(api_port)], env, api_port)
        try:
            yield DemoShop(shop_url, api, redis_server)
        finally:
            api.stop()
    finally:
        redis_server.stop()


async def open_and_answered(page: Page, url: str) -> int:
    """Opens a page and returns the status of the answer to its page_view."""
    async with page.expect_response(lambda response: response.url.endswith("/v1/events")) as answer:
        await page.goto(url)
    return (await answer.value).status


async def test_with_redis_down_the_shop_shows_no_tag_error_and_its_batches_arrive_once_redis_is_back(
    demo_shop: DemoShop, page: Page, problems: PageProblems
) -> None:
    assert await open_and_answered(page, demo_shop.url) == 200
    demo_shop.redis.stop()

    assert await open_and_answered(page, f"{demo_shop.url}/p/socks-stripe") == 503
    await eventually(lambda: kept_count(page), 1)
    assert await open_and_answered(page, f"{demo_shop.url}/c/kitchen") == 503
    await eventually(lambda: kept_count(page), 2)
    assert problems.page_errors == []
    assert problems.console_errors, "Chromium reports the 503s"
    assert all(error.startswith(DEGRADED_CONSOLE_ERROR) for error in problems.console_errors)

    demo_shop.redis.start()
    await eventually(lambda: ready(demo_shop.api), True, within_s=10)
    assert await open_and_answered(page, demo_shop.url) == 200
    await eventually(lambda: kept_count(page), 0)
    async with aioredis.Redis.from_url(demo_shop.redis.url) as redis:
        state = await state_of(redis, "demo", page)
    assert state.session.pages == 4, "every page view counted once, those made while Redis was down too"
    assert state.session.products == {"socks-stripe": 1}
    assert "kitchen" in state.session.categories
    assert problems.page_errors == []
    assert all(error.startswith(DEGRADED_CONSOLE_ERROR) for error in problems.console_errors)


async def test_a_batch_sent_as_the_page_is_left_during_an_outage_arrives_with_a_later_page(
    demo_shop: DemoShop, page: Page, problems: PageProblems
) -> None:
    """Every batch is kept before it is sent, so one that goes out by beacon as its page is hidden loses
    nothing to a 503 no page sees: the next page resends it and the server applies it once."""
    assert await open_and_answered(page, demo_shop.url) == 200
    demo_shop.redis.stop()
    # The page is hidden with the event still queued: the tag sends it by beacon, whose 503 no page sees.
    async with page.expect_request(lambda request: request.url.endswith("/v1/events")):
        await page.evaluate(
            "storetag.track('product_view', {id: 'left-behind'}); dispatchEvent(new Event('pagehide'))"
        )
    assert await open_and_answered(page, f"{demo_shop.url}/c/kitchen") == 503

    demo_shop.redis.start()
    await eventually(lambda: ready(demo_shop.api), True, within_s=10)
    assert await open_and_answered(page, demo_shop.url) == 200
    await eventually(lambda: kept_count(page), 0)
    async with aioredis.Redis.from_url(demo_shop.redis.url) as redis:
        state = await state_of(redis, "demo", page)
    assert state.session.products == {"left-behind": 1}
    assert state.session.pages == 3, "the home page twice and the kitchen once"
    assert problems.page_errors == []


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Crash test</title>
<script async src="{tag}"></script></head><body><h1>A page</h1></body></html>"""


class CrashableApi:
    """`storetag serve` on a fixed port, killed and started again by the test; pages on another origin."""

    def __init__(self, redis_url: str) -> None:
        api_port, page_port = free_port(), free_port()
        self.port = api_port
        self.pages = PageServer(page_port, lambda path: (PAGE.format(tag=f"{self.url}/t/shop.js"), {}))
        self.url = f"http://127.0.0.1:{api_port}"
        self.env = {
            "REDIS_URL": redis_url,
            "STORETAG_SITES": str(SITES_FILE),
            "STORETAG_RULES": str(FAULT_RULES),
            "STORETAG_ALLOWED_ORIGINS": self.pages.origin,
        }
        self.server = self.start()

    def start(self) -> LiveServer:
        self.server = LiveServer(["serve", "--port", str(self.port)], self.env, self.port)
        return self.server

    def kill(self) -> None:
        self.server.process.kill()
        self.server.process.wait(10)

    def close(self) -> None:
        self.server.stop()
        self.pages.close()


@pytest.fixture
def crashable(redis_url: str) -> Iterator[CrashableApi]:
    api = CrashableApi(redis_url)
    try:
        yield api
    finally:
        api.close()


async def product_views(redis: aioredis.Redis, page: Page, product: str) -> int:
    return (await state_of(redis, "shop", page)).session.products.get(product, 0)


# (when the server dies, the product viewed): "stall" makes a test rule stop the server once the state is
# written, so the kill lands between the write and the answer.
MOMENTS = [("before the server reads the batch", "mug"), ("after the state is written", "stall")]


@pytest.mark.parametrize(("moment", "product"), MOMENTS, ids=[moment for moment, _ in MOMENTS])
async def test_a_batch_in_flight_when_the_server_is_killed_is_delivered_when_it_is_back_and_counted_once(
    crashable: CrashableApi, page: Page, redis: aioredis.Redis, moment: str, product: str
) -> None:
    assert await open_and_answered(page, f"{crashable.pages.origin}/") == 200
    if product != "stall":
        crashable.server.process.send_signal(signal.SIGSTOP)
    async with page.expect_request(lambda request: request.url.endswith("/v1/events")):
        await page.evaluate(f"storetag.track('product_view', {{id: '{product}'}})")
    if product == "stall":
        await eventually(lambda: product_views(redis, page, product), 1)
    crashable.kill()
    await eventually(lambda: kept_count(page), 1)
    [in_flight] = await kept_batches(page)

    crashable.start()
    await page.evaluate("storetag.track('search', {query: 'back'})")  # an answer drains the retry queue
    await eventually(lambda: kept_count(page), 0)
    await eventually(lambda: product_views(redis, page, product), 1)
    state = await state_of(redis, "shop", page)
    assert state.saw_batch(str(in_flight["batch"]))
    assert state.session.products == {product: 1}
