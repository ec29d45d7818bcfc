"""Every targeting field a rule reads, as the visitor's events and request set it."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec

from server import protocol as p
from server.testing import TEST_SITE, Simulator

IPAD = "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Safari"
PIXEL = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/140 Mobile Safari/537.36"


async def test_page_url_path_patterns_and_page_type() -> None:
    sim = Simulator(rules=[])
    await sim.page_view(url="https://shop.test/collections/sale-winter?page=2", page_type="category")
    visit = await sim.visit()
    assert visit.path == "/collections/sale-winter"
    assert visit.path_matches("/collections/sale*") and not visit.path_matches("/products/*")
    assert visit.url.endswith("?page=2") and visit.page_type == "category"


async def test_referrer_host_and_utm_of_the_landing_page() -> None:
    sim = Simulator(rules=[])
    landing = "https://shop.test/?utm_source=newsletter&utm_medium=email&utm_campaign=black-friday"
    await sim.send(p.PageView(url=landing, ref="https://www.google.com/"))
    await sim.page_view(url="https://shop.test/p/mug")
    visit = await sim.visit()
    assert visit.referrer_host == "google.com"
    assert (visit.utm.source, visit.utm.medium, visit.utm.campaign) == ("newsletter", "email", "black-friday")
    assert visit.landing_page == landing


async def test_device_class_from_the_user_agent() -> None:
    for agent, device in ((IPAD, "tablet"), (PIXEL, "mobile")):
        sim = Simulator(rules=[], user_agent=agent)
        await sim.page_view()
        assert (await sim.visit()).device == device
    desktop = Simulator(rules=[])
    await desktop.page_view()
    assert (await desktop.visit()).device == "desktop"


async def test_new_and_returning_visitors_and_their_visit_count() -> None:
    sim = Simulator(rules=[])
    await sim.page_view()
    visit = await sim.visit()
    assert visit.is_first_visit and not visit.is_returning and visit.visits == 1
    sim.advance(minutes=45)
    await sim.page_view()
    visit = await sim.visit()
    assert visit.is_returning and visit.visits == 2


async def test_pages_this_session_and_time_on_site() -> None:
    sim = Simulator(rules=[])
    await sim.page_view()
    sim.advance(seconds=90)
    await sim.page_view()
    visit = await sim.visit()
    assert visit.pages == 2 and visit.time_on_site_s == 90


async def test_cart_value_count_and_contents() -> None:
    sim = Simulator(rules=[])
    await sim.track("cart_add", id="mug", qty=2, price=12, category="kitchen")
    await sim.track("cart_add", id="tee", price=20, category="apparel")
    visit = await sim.visit()
    assert (visit.cart.value, visit.cart.count) == (44, 3)
    assert "mug" in visit.cart and "lamp" not in visit.cart
    assert visit.cart.has_category("apparel") and not visit.cart.has_category("garden")


async def test_viewed_products_and_categories_with_counts() -> None:
    sim = Simulator(rules=[])
    await sim.track("product_view", id="mug", category="kitchen")
    await sim.track("product_view", id="mug", category="kitchen")
    await sim.track("category_view", id="garden")
    visit = await sim.visit()
    assert visit.viewed_products == {"mug": 2}
    assert visit.viewed_categories == {"kitchen": 2, "garden": 1}


async def test_purchases_orders_and_lifetime_revenue() -> None:
    sim = Simulator(rules=[])
    visit = await sim.visit()
    assert not visit.has_purchased and visit.orders == 0
    await sim.track("purchase", order_id="a", value=30.5)
    sim.advance(days=3)
    await sim.track("purchase", order_id="b", value=10)
    visit = await sim.visit()
    assert visit.has_purchased and visit.purchased and (visit.orders, visit.revenue) == (2, 40.5)


async def test_identified_or_anonymous() -> None:
    sim = Simulator(rules=[])
    await sim.page_view()
    assert not (await sim.visit()).is_identified
    signature = hmac.new(b"test-secret", b"c-7", hashlib.sha256).hexdigest()
    await sim.track("identify", customer_id="c-7", signature=signature)
    visit = await sim.visit()
    assert visit.is_identified and visit.customer_id == "c-7"


async def test_web_push_subscribed_or_refused_in_this_browser() -> None:
    sim = Simulator(rules=[])
    await sim.page_view()
    visit = await sim.visit()
    assert not visit.push_subscribed and not visit.push_denied
    await sim.track("push_subscribed")
    assert (await sim.visit()).push_subscribed
    await sim.track("push_unsubscribed")
    visit = await sim.visit()
    assert not visit.push_subscribed and not visit.push_denied
    await sim.track("push_denied")
    assert (await sim.visit()).push_denied
    await sim.track("push_denied", reason="unsupported")  # the browser cannot: not the visitor's no
    visit = await sim.visit()
    assert not visit.push_denied and not visit.push_subscribed


async def test_language_from_the_browser_or_else_accept_language() -> None:
    sim = Simulator(rules=[], accept_language="fr-CH,fr;q=0.9,en;q=0.5")
    await sim.page_view()
    visit = await sim.visit()
    assert (visit.locale, visit.language) == ("fr-CH", "fr")
    await sim.track("page_view", lang="de-AT")
    assert (await sim.visit()).language == "de"


async def test_country_from_the_trusted_header() -> None:
    sim = Simulator(rules=[], country="AT")
    await sim.page_view()
    assert (await sim.visit()).country == "AT"


async def test_local_time_and_weekday_in_the_sites_time_zone() -> None:
    site = msgspec.structs.replace(TEST_SITE, timezone="Asia/Tokyo")
    sim = Simulator(rules=[], site=site)
    sim.now = datetime(2026, 11, 23, 23, 30, tzinfo=ZoneInfo("UTC")).timestamp()  # a Monday in UTC
    await sim.page_view()
    visit = await sim.visit()
    assert (visit.local_hour, visit.weekday) == (8, "tuesday")
