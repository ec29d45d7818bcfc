"""Bad input gets a clear 4xx with a JSON message, and nothing is written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.protocol import EVENT_TYPES
from tests.conftest import LiveServer
from tests.wire import batch, event, new_id, post


async def assert_refused(
    client: httpx.AsyncClient, redis: aioredis.Redis, body: Any, status: int, message: str, **kwargs: Any
) -> None:
    response = await post(client, body, **kwargs)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert await redis.dbsize() == 0, "a refused batch wrote something"


async def test_malformed_json_is_refused_with_the_decoders_message(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    await assert_refused(client, redis, b'{"site": "shop", "visitor": ', 400, "truncated")


async def test_a_wrong_field_type_is_refused_with_its_path(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    body = batch(event("page_view"), event("cart_add", id="mug", qty="two"), visitor=new_id())
    await assert_refused(client, redis, body, 400, "Expected `int`, got `str` - at `$.events[1].props.qty`")


async def test_an_unknown_event_type_is_refused(client: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    body = batch(event("page_view"), event("teleport"), visitor=new_id())
    await assert_refused(client, redis, body, 400, "Invalid value 'teleport' - at `$.events[1].type`")


async def test_an_unknown_site_is_refused(client: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    await assert_refused(client, redis, batch(event("page_view"), visitor=new_id(), site="nope"), 404, "nope")


async def test_a_page_on_another_origin_is_refused(client: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    body = batch(event("page_view"), visitor=new_id())
    await assert_refused(client, redis, body, 403, "not allowed", origin="https://evil.test")
    await assert_refused(client, redis, body, 403, "not allowed", origin="https://other.test")


async def test_a_body_over_64_kb_is_refused(client: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    body = batch(event("page_view", title="x" * 300), visitor=new_id())
    body["events"] *= 200
    await assert_refused(client, redis, body, 413, "over 64 KB")


async def test_more_than_100_events_are_refused(client: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    body = batch(*[{"type": "page_view"}] * 101, visitor=new_id())
    await assert_refused(client, redis, body, 413, "100 events")


async def test_a_visitor_id_that_could_escape_its_key_is_refused(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    await assert_refused(
        client, redis, batch(event("page_view"), visitor="abc}:x{0123456789"), 400, "visitor"
    )


@pytest.fixture(scope="module")
def sync_client(api_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_server.url) as client:
        yield client


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
props = st.dictionaries(
    st.sampled_from(["id", "qty", "price", "action", "order_id", "value", "items"]), json_values
)
random_events = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(EVENT_TYPES)) | st.text(max_size=12)},
    optional={"props": props | json_values, "ts": json_values, "url": json_values},
)
random_batches = st.fixed_dictionaries(
    {
        "site": st.sampled_from(["shop", "other", ""]) | st.text(max_size=8),
        "visitor": st.just("f" * 32) | st.text(max_size=40),
        "session": st.just("e" * 32) | json_values,
        "events": st.lists(random_events, max_size=5) | json_values,
    },
    optional={"batch": st.text(max_size=20) | json_values, "extra": json_values},
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=random_batches | json_values)
def test_random_batches_never_get_a_server_error(sync_client: httpx.Client, body: Any) -> None:
    response = sync_client.post(
        "/v1/events",
        content=json.dumps(body),
        headers={"content-type": "text/plain", "origin": "https://shop.test"},
    )
    assert response.status_code in (200, 400, 403, 404, 413), response.text
    assert response.headers["content-type"] == "application/json"
