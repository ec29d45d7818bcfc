"""Servers are stateless: a visitor whose batches alternate between two server processes on one Redis gets
the same answers, and ends in the same state, as a visitor served by one process."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import redis.asyncio as aioredis

from server.state import visitor_key
from server.visitor import state_decoder
from tests.conftest import TEST_REDIS_TIMEOUT_MS, LiveServer
from tests.fault.redis_server import RedisServer
from tests.wire import batch, event, new_id, post

# A visit through the demo rules: welcome, free-shipping nudge, an exit offer with a code, withdrawals at
# checkout, and an order redeeming the code.
STEPS: list[Callable[[str], list[dict[str, Any]]]] = [
    lambda code: [event("page_view", url="https://shop.test/")],
    lambda code: [event("page_view", url="https://shop.test/c/kitchen", page_type="category")],
    lambda code: [event("action_shown", action="welcome")],
    lambda code: [event("product_view", id="mug", name="Mug", price=40, category="kitchen")],
    lambda code: [event("cart_add", id="mug", name="Mug", price=40, category="kitchen")],
    lambda code: [event("action_shown", action="free_shipping")],
    lambda code: [event("cart_add", id="socks", name="Socks", price=20, category="apparel")],
    lambda code: [event("page_view", url="https://shop.test/checkout", page_type="checkout")],
    lambda code: [event("purchase", order_id="o-1", value=60, code=code)],
    lambda code: [event("page_view", url="https://shop.test/thank-you", page_type="thank_you")],
]
TIMESTAMP = re.compile(r"\b1\d{12}\b")


async def visit(servers: list[httpx.AsyncClient], redis: aioredis.Redis) -> tuple[list[str], str]:
    """Runs STEPS for a new visitor, batch n on servers[n % len(servers)]; returns the answers and the final
    state, with what differs between any two visitors (ids, codes, times) masked."""
    visitor, code, answers = new_id(), "", []
    for n, step in enumerate(STEPS):
        response = await post(servers[n % len(servers)], batch(*step(code), visitor=visitor))
        assert response.status_code == 200
        answer = response.json()
        code = next((action["code"] for action in answer["actions"] if action["kind"] == "offer"), code)
        answers.append(json.dumps(answer))
    state = msgspec.to_builtins(state_decoder.decode(await redis.get(visitor_key("shop", visitor, "state"))))
    state["seen"] = len(state["seen"])
    masked = [mask(text, visitor, code) for text in [*answers, json.dumps(state)]]
    assert code and all(code not in text for text in masked)
    return masked[:-1], masked[-1]


def mask(text: str, visitor: str, code: str) -> str:
    return TIMESTAMP.sub("0", text.replace(visitor, "VISITOR").replace(code, "CODE"))


async def test_two_servers_behind_one_redis_answer_a_visitor_as_one_server_does(
    redis_server: RedisServer, start_api: Callable[..., LiveServer]
) -> None:
    one, two = (start_api(STORETAG_REDIS_TIMEOUT_MS=str(TEST_REDIS_TIMEOUT_MS)) for _ in range(2))
    async with (
        httpx.AsyncClient(base_url=one.url) as first,
        httpx.AsyncClient(base_url=two.url) as second,
        aioredis.Redis.from_url(redis_server.url) as redis,
    ):
        alone = await visit([first], redis)
        alternating = await visit([first, second], redis)
    assert alternating == alone
    answered = [json.loads(answer) for answer in alone[0]]
    kinds = {action["id"] for answer in answered for action in answer["actions"]}
    assert kinds == {"welcome", "free_shipping", "cart_rescue", "thank_you"}, "the visit meets every rule"
    assert any(answer["withdraw"] for answer in answered)
