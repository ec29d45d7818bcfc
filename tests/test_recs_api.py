"""Recommendations over HTTP: slots filled in the events answer, GET /v1/recs, attribution, escaping."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import httpx
import redis.asyncio as aioredis

from tests.wire import batch, event, new_id, post

ADMIN = {"authorization": "Bearer s3cret"}


def product_page(item: str, slots: tuple[str, ...] = (), **props: Any) -> list[dict[str, Any]]:
    url = f"https://shop.test/p/{item}"
    return [
        event("page_view", url=url, page_type="product", slots=list(slots)),
        event("product_view", url=url, id=item, name=props.pop("name", item.title()), price=10, **props),
    ]


async def browse(client: httpx.AsyncClient, *items: str, **props: Any) -> str:
    visitor = new_id()
    for item in items:
        await post(client, batch(*product_page(item, **props), visitor=visitor))
    return visitor


async def test_a_page_with_a_slot_gets_the_list_its_rule_chose(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        await browse(client, "mug", "teapot")
    response = await post(client, batch(*product_page("mug", ("product_recs",)), visitor=new_id()))
    [recs] = response.json()["actions"]
    assert (recs["kind"], recs["id"], recs["slot"], recs["strategy"]) == (
        "recs",
        "product_recs",
        "product_recs",
        "viewed_together",
    )
    [teapot] = recs["items"]
    assert teapot == {
        "id": "teapot",
        "title": "Teapot",
        "url": "https://shop.test/p/teapot",
        "price": 10.0,
        "currency": "EUR",
        "price_text": "€10.00",
    }
    assert 'data-storetag-item="teapot"' in recs["html"] and "€10.00" in recs["html"]


async def test_a_page_without_slots_gets_no_list(client: httpx.AsyncClient) -> None:
    await browse(client, "mug", "teapot")
    response = await post(client, batch(*product_page("mug"), visitor=new_id()))
    assert [action["kind"] for action in response.json()["actions"]] == []


async def test_get_recs_answers_the_same_list_as_json_and_writes_nothing(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    for _ in range(2):
        await browse(client, "mug", "teapot")
    events_answer = await post(client, batch(*product_page("mug", ("product_recs",)), visitor=new_id()))
    keys = sorted(await redis.keys("*"))
    query = {"site": "shop", "visitor": new_id(), "slot": "product_recs", "item": "mug"}
    response = await client.get("/v1/recs", params=query, headers={"origin": "https://shop.test"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["access-control-allow-origin"] == "https://shop.test"
    [recs] = response.json()["actions"]
    [expected] = events_answer.json()["actions"]
    assert recs["items"] == expected["items"] and recs["html"] == expected["html"]
    assert sorted(await redis.keys("*")) == keys


async def test_get_recs_refuses_bad_queries_unknown_sites_and_foreign_pages(
    client: httpx.AsyncClient,
) -> None:
    good = {"site": "shop", "visitor": new_id(), "slot": "product_recs"}
    assert (await client.get("/v1/recs", params={**good, "slot": "a b"})).status_code == 400
    assert (await client.get("/v1/recs", params={"site": "shop"})).status_code == 400
    assert (await client.get("/v1/recs", params={**good, "site": "nope"})).status_code == 404
    foreign = await client.get("/v1/recs", params=good, headers={"origin": "https://evil.test"})
    assert foreign.status_code == 403
    unfilled = await client.get("/v1/recs", params={**good, "slot": "not-on-any-rule"})
    assert unfilled.json()["actions"] == []


async def test_shop_and_visitor_strings_are_escaped_and_only_http_links_are_drawn(
    client: httpx.AsyncClient,
) -> None:
    title = '<img src=x onerror="alert(1)">'
    for _ in range(2):
        await browse(client, "mug", "evil", name=title)
    response = await post(client, batch(*product_page("mug", ("product_recs",)), visitor=new_id()))
    [recs] = response.json()["actions"]
    assert "<img src=x" not in recs["html"] and "&lt;img src=x" in recs["html"]
    assert "javascript:" not in recs["html"]


async def test_a_purchase_after_a_click_on_a_recommendation_is_credited_to_its_slot_and_strategy(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    client = make_client(admin_token_sha256=hashlib.sha256(b"s3cret").hexdigest())
    visitor = new_id()
    slot = {"slot": "product_recs", "strategy": "viewed_together"}
    await post(
        client,
        batch(
            event("recs_shown", items=["teapot", "beans"], **slot),
            event("recs_clicked", item="teapot", **slot),
            visitor=visitor,
        ),
    )
    items = [{"id": "teapot", "price": 29, "qty": 2}, {"id": "mug", "price": 12}]
    await post(client, batch(event("purchase", order_id="o-1", value=70, items=items), visitor=visitor))
    await post(client, batch(event("purchase", order_id="o-1", value=70, items=items), visitor=visitor))
    stats = (await client.get("/v1/admin/sites/shop/recs/stats", headers=ADMIN)).json()
    assert stats == {
        "stats": [
            {
                "slot": "product_recs",
                "strategy": "viewed_together",
                "shown": 1,
                "clicks": 1,
                "orders": 1,
                "revenue": 58.0,
            }
        ]
    }


async def test_a_purchase_in_a_later_session_is_not_credited(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    client = make_client(admin_token_sha256=hashlib.sha256(b"s3cret").hexdigest(), session_timeout_s=0)
    visitor = new_id()
    clicked = event("recs_clicked", item="teapot", slot="product_recs", strategy="viewed_together")
    await post(client, batch(clicked, visitor=visitor))
    items = [{"id": "teapot", "price": 29}]
    await post(client, batch(event("purchase", order_id="o-1", value=29, items=items), visitor=visitor))
    [row] = (await client.get("/v1/admin/sites/shop/recs/stats", headers=ADMIN)).json()["stats"]
    assert (row["clicks"], row["orders"], row["revenue"]) == (1, 0, 0.0)


async def test_with_recommendations_off_events_teach_nothing_and_slots_stay_empty(
    make_client: Callable[..., httpx.AsyncClient], redis: aioredis.Redis
) -> None:
    client = make_client(recs=False)
    visitor = await browse(client, "mug", "teapot")
    recs_keys = ("st:{shop}:r:*", "st:{shop}:rstat", "st:{shop}:p", "st:{shop}:pc:*")
    assert [key for pattern in recs_keys for key in await redis.keys(pattern)] == []
    response = await post(client, batch(*product_page("mug", ("product_recs",)), visitor=visitor))
    assert [action["kind"] for action in response.json()["actions"]] == ["popup"]
