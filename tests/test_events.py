"""POST /v1/events: each event type changes the visitor's state as specified, on a real Redis."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import httpx
import redis.asyncio as aioredis

from server.state import visitor_key
from server.visitor import MAX_BATCH_IDS, VisitorState, state_decoder, state_encoder
from tests.wire import batch, event, new_id, post

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


async def stored(redis: aioredis.Redis, visitor: str, site: str = "shop") -> VisitorState:
    raw = await redis.get(visitor_key(site, visitor, "state"))
    assert raw is not None, "no state stored"
    return state_decoder.decode(raw)


async def test_first_page_view_starts_a_profile_and_a_session(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    visitor = new_id()
    landing = "https://shop.test/sale?utm_source=news&utm_medium=email&utm_campaign=winter"
    page = event("page_view", url=landing, ref="https://search.test/q", page_type="home", lang="de-DE")
    response = await post(client, batch(page, visitor=visitor), **{"user-agent": IPHONE})
    assert response.status_code == 200
    assert response.json()["actions"] == []
    state = await stored(redis, visitor)
    assert state.profile.visits == 1
    assert state.profile.first_seen == state.profile.last_seen > 0
    session = state.session
    assert (session.pages, session.landing, session.referrer) == (1, landing, "https://search.test/q")
    assert (session.utm.source, session.utm.medium, session.utm.campaign) == ("news", "email", "winter")
    assert (session.device, session.lang, session.page_type) == ("mobile", "de-DE", "home")


async def test_product_and_category_views_are_counted(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    visitor = new_id()
    mug = event("product_view", id="mug", name="Mug", price=12, category="kitchen")
    await post(client, batch(mug, mug, event("category_view", id="garden"), visitor=visitor))
    session = (await stored(redis, visitor)).session
    assert session.products == {"mug": 2}
    assert session.categories == {"kitchen": 2, "garden": 1}


async def test_cart_adds_and_removes_change_lines_and_value(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    visitor = new_id()
    await post(
        client,
        batch(
            event("cart_add", id="mug", qty=2, price=12.5, name="Mug"),
            event("cart_add", id="tee", qty=1, price=20),
            event("cart_remove", id="mug", qty=1),
            visitor=visitor,
        ),
    )
    state = await stored(redis, visitor)
    assert {line_id: line.qty for line_id, line in state.session.cart.items()} == {"mug": 1, "tee": 1}
    assert state.cart_value == 32.5
    await post(client, batch(event("cart_remove", id="tee", qty=5), visitor=visitor))
    assert list((await stored(redis, visitor)).session.cart) == ["mug"]


async def test_purchase_records_the_order_and_empties_the_cart(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    visitor = new_id()
    await post(
        client,
        batch(event("cart_add", id="mug", price=30), event("checkout_start"), visitor=visitor),
    )
    assert (await stored(redis, visitor)).session.checkout_started
    await post(client, batch(event("purchase", order_id="o-1", value=30), visitor=visitor))
    await post(client, batch(event("purchase", order_id="o-2", value=12.25), visitor=visitor))
    state = await stored(redis, visitor)
    assert state.session.purchased and not state.session.cart and not state.session.checkout_started
    assert (state.session.orders, state.session.revenue) == (2, 42.25)
    assert (state.profile.orders, state.profile.revenue) == (2, 42.25)


async def test_identify_needs_the_shops_signature(client: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    visitor = new_id()
    await post(client, batch(event("identify", customer_id="c-42", signature="00" * 32), visitor=visitor))
    assert (await stored(redis, visitor)).profile.customer_id == ""
    signature = hmac.new(b"test-secret", b"c-42", hashlib.sha256).hexdigest()
    await post(client, batch(event("identify", customer_id="c-42", signature=signature), visitor=visitor))
    assert (await stored(redis, visitor)).profile.customer_id == "c-42"


async def test_action_events_build_the_history_of_known_actions_only(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    visitor = new_id()
    await post(
        client,
        batch(
            event("action_shown", action="welcome"),
            event("action_clicked", action="welcome"),
            event("action_closed", action="welcome"),
            event("action_shown", action="made-up-by-a-client"),
            visitor=visitor,
        ),
    )
    actions = (await stored(redis, visitor)).actions
    assert list(actions) == ["welcome"]
    assert (len(actions["welcome"].shown), actions["welcome"].clicked, actions["welcome"].closed) == (1, 1, 1)


async def test_a_session_ends_after_30_idle_minutes(client: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    visitor = new_id()
    await post(client, batch(event("page_view"), event("page_view"), visitor=visitor))
    state = await stored(redis, visitor)
    state.session.last_seen -= 29 * 60 * 1000
    await redis.set(visitor_key("shop", visitor, "state"), state_encoder.encode(state))
    await post(client, batch(event("page_view"), visitor=visitor))
    state = await stored(redis, visitor)
    assert (state.profile.visits, state.session.pages) == (1, 3)

    state.session.last_seen -= 31 * 60 * 1000
    await redis.set(visitor_key("shop", visitor, "state"), state_encoder.encode(state))
    await post(client, batch(event("page_view", url="https://shop.test/back"), visitor=visitor))
    state = await stored(redis, visitor)
    assert (state.profile.visits, state.session.pages, state.session.landing) == (
        2,
        1,
        "https://shop.test/back",
    )


async def test_concurrent_batches_for_one_visitor_lose_nothing(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    visitor = new_id()
    tabs = [
        batch(event("page_view"), event("cart_add", id=f"item-{n}", price=1), visitor=visitor)
        for n in range(40)
    ]
    responses = await asyncio.gather(*(post(client, body) for body in tabs))
    assert {response.status_code for response in responses} == {200}
    state = await stored(redis, visitor)
    assert len(state.session.cart) == 40
    assert state.session.pages == 40


async def test_a_retried_batch_is_counted_once(client: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    visitor = new_id()
    body = batch(event("cart_add", id="mug", price=5), visitor=visitor)
    assert (await post(client, body)).status_code == 200
    assert (await post(client, body)).status_code == 200
    assert (await stored(redis, visitor)).session.cart["mug"].qty == 1


async def test_a_batch_resent_within_the_visitors_next_twenty_batches_is_counted_once(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    visitor = new_id()
    first = batch(event("cart_add", id="mug", price=5), visitor=visitor)
    assert (await post(client, first)).status_code == 200
    for _ in range(MAX_BATCH_IDS - 1):
        assert (await post(client, batch(event("page_view"), visitor=visitor))).status_code == 200
    assert (await post(client, first)).status_code == 200
    assert (await stored(redis, visitor)).session.cart["mug"].qty == 1


async def test_batch_ids_kept_in_full_by_an_older_state_still_count_once(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    visitor = new_id()
    body = batch(event("cart_add", id="mug", price=5), visitor=visitor)
    assert (await post(client, body)).status_code == 200
    state = await stored(redis, visitor)
    state.seen, state.batches = b"", [str(body["batch"])]
    await redis.set(visitor_key("shop", visitor, "state"), state_encoder.encode(state))
    assert (await post(client, body)).status_code == 200
    assert (await post(client, batch(event("page_view"), visitor=visitor))).status_code == 200
    after = await stored(redis, visitor)
    assert after.session.cart["mug"].qty == 1 and after.batches == [] and after.saw_batch(str(body["batch"]))


async def test_visitor_state_expires_after_the_configured_ttl(
    make_client: object, redis: aioredis.Redis
) -> None:
    client = make_client(state_ttl_s=3600)  # type: ignore[operator]
    visitor = new_id()
    await post(client, batch(event("page_view"), visitor=visitor))
    assert 3590 < await redis.ttl(visitor_key("shop", visitor, "state")) <= 3600
    assert all([await redis.ttl(key) > 0 for key in await redis.keys("*")]), "every key expires"


async def test_sites_keep_separate_state_for_the_same_visitor_id(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    visitor = new_id()
    await post(client, batch(event("cart_add", id="mug", price=5), visitor=visitor))
    await post(client, batch(event("page_view"), visitor=visitor, site="other"), origin="https://other.test")
    assert not (await stored(redis, visitor, site="other")).session.cart
    assert "mug" in (await stored(redis, visitor)).session.cart
