"""Web push in the demo shop, in Chromium: the soft prompt, the browser's permission, the service worker
the shop hosts, and a notification it shows from a real push message.

Headless Chromium cannot subscribe to a real push service here: in a browser context like this one (off
the record) it refuses ("Registration failed - permission denied"), and in a profile on disk it waits
forever for Google's push service, which this machine cannot reach. So `allow` tests swap only
PushManager.subscribe for a recorder that returns a made-up subscription; permission, the service
worker's registration and the message delivered to it are Chromium's own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import msgspec
import pytest
import redis.asyncio as aioredis
from playwright.async_api import BrowserContext, Page, Request, Route, expect

from server import protocol as p
from server.settings import DEFAULT_SITES_FILE
from server.sites import load_sites
from server.visitor import VisitorState, state_decoder
from tests.browser.conftest import PageProblems, Shop, eventually

# The soft prompt, not the shop's other pop-ups (the welcome comes on later pages when the prompt cannot).
PROMPT = '[data-storetag=popup] [role=dialog]:has-text("Allow notifications")'
DEMO = load_sites(DEFAULT_SITES_FILE)["demo"]
# PushManager, recorded: the key it was asked for, and a subscription as a push service gives one, kept
# until it is ended.
FAKE_PUSH_MANAGER = """
(() => {
  let current = null;
  PushManager.prototype.subscribe = function (options) {
    const key = new Uint8Array(options.applicationServerKey);
    window.__subscribed_with = btoa(String.fromCharCode(...key))
      .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
    window.__user_visible_only = options.userVisibleOnly;
    const endpoint = "https://push.example/send/abc";
    const keys = {p256dh: "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e",
                  auth: "tBHItJI5svbpez7KI4CCXg"};
    current = {
      endpoint,
      toJSON: () => ({endpoint, expirationTime: null, keys}),
      unsubscribe: () => { current = null; return Promise.resolve(true); },
    };
    return Promise.resolve(current);
  };
  PushManager.prototype.getSubscription = () => Promise.resolve(current);
})();
"""


async def state_of(redis: aioredis.Redis, page: Page) -> VisitorState | None:
    visitor = await page.evaluate("localStorage.getItem('storetag.vid')")
    raw = await redis.get(f"st:{{demo:{visitor}}}:state")
    return state_decoder.decode(raw) if raw else None


def reading(
    redis: aioredis.Redis, page: Page, field: Callable[[VisitorState], object]
) -> Callable[[], Awaitable[object]]:
    async def read() -> object:
        state = await state_of(redis, page)
        return field(state) if state else None

    return read


async def product_page(page: Page, shop: Shop, product: str) -> None:
    """Opens a product page and waits until its events are answered and anything answered is drawn."""
    async with page.expect_response("**/v1/events"):
        await page.goto(f"{shop.url}/p/{product}")
    await page.wait_for_load_state("networkidle")


async def prompt_on_second_product_page(page: Page, shop: Shop) -> None:
    await product_page(page, shop, "mug-blue")
    await expect(page.locator(PROMPT)).to_have_count(0)
    await product_page(page, shop, "teapot-clay")
    await expect(page.locator(PROMPT)).to_contain_text("Allow notifications")


async def test_the_soft_prompt_appears_with_the_second_product_view_and_never_before(
    shop: Shop, page: Page, problems: PageProblems
) -> None:
    await prompt_on_second_product_page(page, shop)
    await expect(page.locator(PROMPT)).to_have_attribute("aria-modal", "true")
    assert await page.evaluate("Notification.permission") == "default"  # the browser was not asked
    assert problems.console_errors == [] and problems.page_errors == []


async def test_not_now_closes_it_and_it_stays_away_on_the_next_pages(
    shop: Shop, page: Page, problems: PageProblems, redis: aioredis.Redis
) -> None:
    await prompt_on_second_product_page(page, shop)
    await page.get_by_role("button", name="Not now").click()
    await expect(page.locator(PROMPT)).to_have_count(0)
    await eventually(reading(redis, page, lambda state: state.actions["push_prompt"].closed), 1)
    assert await page.evaluate("Notification.permission") == "default"

    # The tag remembers too: an answer that brought the prompt back would not draw it.
    async def prompt_again(route: Route) -> None:
        response = await route.fetch()
        answer = await response.json()
        answer["actions"].append(
            {
                "id": "push_prompt",
                "kind": "push_prompt",
                "trigger": "now",
                "expires": 4102444800000,
                "html": "<button data-storetag-cta>Allow notifications</button>",
            }
        )
        await route.fulfill(response=response, body=json.dumps(answer))

    await page.route("**/v1/events", prompt_again)
    for product in ("coffee-beans", "pencil-set"):
        await product_page(page, shop, product)
        await expect(page.locator(PROMPT)).to_have_count(0)
    assert problems.console_errors == [] and problems.page_errors == []


class SubscriptionsEndpoint:
    """Stands in for the server's /v1/push/subscriptions, which is built beside this (issue 4)."""

    def __init__(self, shop: Shop) -> None:
        loop = asyncio.get_running_loop()
        self.shop = shop
        self.posted: asyncio.Future[p.Subscribe] = loop.create_future()
        self.deleted: asyncio.Future[p.Unsubscribe] = loop.create_future()

    async def answer(self, route: Route, request: Request) -> None:
        cors = {"Access-Control-Allow-Origin": self.shop.url}
        if request.method == "OPTIONS":  # DELETE is not a simple request: the browser asks first
            cors.update(
                {
                    "Access-Control-Allow-Methods": "POST, DELETE",
                    "Access-Control-Allow-Headers": "Content-Type",
                }
            )
            return await route.fulfill(status=204, headers=cors)
        assert request.headers["content-type"].startswith("text/plain")
        body = request.post_data or ""
        if request.method == "POST":
            self.posted.set_result(msgspec.json.decode(body, type=p.Subscribe))
        else:
            self.deleted.set_result(msgspec.json.decode(body, type=p.Unsubscribe))
        await route.fulfill(status=201 if request.method == "POST" else 204, headers=cors)


async def allow_notifications(shop: Shop, context: BrowserContext, page: Page) -> SubscriptionsEndpoint:
    await context.grant_permissions(["notifications"], origin=shop.url)
    await page.add_init_script(FAKE_PUSH_MANAGER)
    endpoint = SubscriptionsEndpoint(shop)
    await page.route("**/v1/push/subscriptions", endpoint.answer)
    await prompt_on_second_product_page(page, shop)
    await page.get_by_role("button", name="Allow notifications").click()
    await expect(page.locator(PROMPT)).to_have_count(0)
    return endpoint


async def test_allow_asks_the_browser_registers_the_shops_worker_and_posts_the_subscription(
    shop: Shop, context: BrowserContext, page: Page, problems: PageProblems, redis: aioredis.Redis
) -> None:
    endpoint = await allow_notifications(shop, context, page)
    subscribe = await asyncio.wait_for(endpoint.posted, 5)
    visitor = await page.evaluate("localStorage.getItem('storetag.vid')")
    assert subscribe.site == "demo" and subscribe.visitor == visitor
    assert subscribe.subscription.endpoint == "https://push.example/send/abc"
    assert await page.evaluate("window.__subscribed_with") == DEMO.vapid_public_key
    assert await page.evaluate("window.__user_visible_only") is True
    worker = await page.evaluate(
        "navigator.serviceWorker.getRegistration().then(r => r && [r.scope, r.active.scriptURL])"
    )
    assert worker == [f"{shop.url}/", f"{shop.url}/storetag-sw.js"]
    await eventually(reading(redis, page, lambda state: state.profile.push), "subscribed")

    await product_page(page, shop, "coffee-beans")
    await expect(page.locator(PROMPT)).to_have_count(0)
    assert problems.console_errors == [] and problems.page_errors == []


async def test_the_page_can_turn_web_push_off_again(
    shop: Shop, context: BrowserContext, page: Page, problems: PageProblems, redis: aioredis.Redis
) -> None:
    endpoint = await allow_notifications(shop, context, page)
    await asyncio.wait_for(endpoint.posted, 5)
    await eventually(reading(redis, page, lambda state: state.profile.push), "subscribed")
    await page.evaluate("storetag('unsubscribe')")
    unsubscribe = await asyncio.wait_for(endpoint.deleted, 5)
    visitor = await page.evaluate("localStorage.getItem('storetag.vid')")
    assert unsubscribe == p.Unsubscribe(
        site="demo", visitor=visitor, endpoint="https://push.example/send/abc"
    )
    assert (
        await page.evaluate("navigator.serviceWorker.ready.then(r => r.pushManager.getSubscription())")
        is None
    )
    await eventually(reading(redis, page, lambda state: state.profile.push), "unsubscribed")
    assert problems.console_errors == [] and problems.page_errors == []


async def test_a_visitor_who_refuses_is_recorded_and_never_asked_again(
    shop: Shop, page: Page, problems: PageProblems, redis: aioredis.Redis
) -> None:
    # Headless Chromium answers the permission dialog itself, with "denied", as a visitor's "block" would.
    await prompt_on_second_product_page(page, shop)
    await page.get_by_role("button", name="Allow notifications").click()
    await eventually(reading(redis, page, lambda state: state.profile.push), "denied")
    assert await page.evaluate("Notification.permission") == "denied"
    for product in ("coffee-beans", "pencil-set"):
        await product_page(page, shop, product)
        await expect(page.locator(PROMPT)).to_have_count(0)
    assert problems.console_errors == [] and problems.page_errors == []


async def test_a_browser_without_web_push_never_sees_the_prompt_and_says_so_once(
    shop: Shop, page: Page, problems: PageProblems, redis: aioredis.Redis
) -> None:
    await page.add_init_script("delete window.PushManager")
    events: list[str] = []
    page.on(
        "request",
        lambda request: (
            events.append(request.post_data or "") if request.url.endswith("/v1/events") else None
        ),
    )
    for product in ("mug-blue", "teapot-clay", "coffee-beans"):
        await product_page(page, shop, product)
        await expect(page.locator(PROMPT)).to_have_count(0)
    await eventually(reading(redis, page, lambda state: state.profile.push), "unsupported")
    assert sum(body.count('"push_denied"') for body in events) == 1
    assert problems.console_errors == [] and problems.page_errors == []


@pytest.mark.parametrize(
    ("url", "button", "opens"),
    [
        ("/p/mug-blue", "", "/p/mug-blue"),
        ("/p/mug-blue", "cart", "/cart"),
        ("javascript:alert(1)", "", None),
    ],
    ids=["the notification", "its button", "a javascript: url"],
)
async def test_the_shops_worker_shows_a_pushed_notification_and_reports_a_click_on_it(
    shop: Shop,
    context: BrowserContext,
    page: Page,
    problems: PageProblems,
    url: str,
    button: str,
    opens: str | None,
) -> None:
    await context.grant_permissions(["notifications"], origin=shop.url)
    await page.goto(shop.url)
    await page.evaluate(
        "navigator.serviceWorker.register('/storetag-sw.js').then(() => navigator.serviceWorker.ready)"
    )
    cdp = await context.new_cdp_session(page)
    registration: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_registrations(update: dict[str, list[dict[str, str]]]) -> None:
        for found in update["registrations"]:
            if found["scopeURL"] == f"{shop.url}/" and not registration.done():
                registration.set_result(found["registrationId"])

    cdp.on("ServiceWorker.workerRegistrationUpdated", on_registrations)
    await cdp.send("ServiceWorker.enable")
    visitor = await page.evaluate("localStorage.getItem('storetag.vid')")
    notification = p.Notification(
        push="p-1",
        title="Your cart misses you",
        body="The Blue Mug is still in it.",
        icon="/img/mug-blue.svg",
        url=url,
        buttons=[p.NotificationButton(action="cart", title="See the cart", url="/cart")],
        rule="cart_reminder",
        api=shop.api.url,
        site="demo",
        visitor=visitor,
    )
    await cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": shop.url,
            "registrationId": await asyncio.wait_for(registration, 5),
            "data": msgspec.json.encode(notification).decode(),
        },
    )
    shown = """navigator.serviceWorker.ready.then(r => r.getNotifications())
        .then(list => list.map(n => [n.title, n.body, n.icon, n.actions.map(a => a.action)]))"""
    await eventually(
        lambda: page.evaluate(shown),
        [["Your cart misses you", "The Blue Mug is still in it.", f"{shop.url}/img/mug-blue.svg", ["cart"]]],
        # The push wakes the worker, which imports /sw.js from the API: slow when the machine is busy.
        within_s=15,
    )

    # A click on it: no real click reaches a headless notification, so the worker gets the event it would
    # fire, with the window it opens and its fetch recorded (the report still goes to the real server).
    [worker] = context.service_workers or [await context.wait_for_event("serviceworker")]
    report = await worker.evaluate(
        """([action, opening]) => {
          const sent = [], opened = [];
          const real = self.fetch;
          self.clients.openWindow = (url) => opened.push(url) && Promise.resolve(null);
          self.fetch = (url, options) => real(url, options).then((response) => {
            sent.push([url, options.body, response.status]);
            return response;
          });
          return self.registration.getNotifications().then(([n]) => {
            self.dispatchEvent(new NotificationEvent("notificationclick", {notification: n, action}));
            return new Promise((done) => {
              const wait = () =>
                sent.length && opened.length == opening ? done([...sent[0], opened]) : setTimeout(wait, 50);
              wait();
            });
          });
        }""",
        [button, 1 if opens else 0],
    )
    to, body, status, opened = report
    assert opened == ([f"{shop.url}{opens}"] if opens else [])
    assert to == f"{shop.api.url}/v1/events" and status == 200
    batch = msgspec.json.decode(body, type=p.EventBatch)
    assert batch.site == "demo" and batch.visitor == visitor
    [clicked] = batch.events
    assert isinstance(clicked, p.PushClicked)
    assert clicked.props == p.PushClickedProps(push="p-1", rule="cart_reminder", action=button)
    assert problems.console_errors == [] and problems.page_errors == []
