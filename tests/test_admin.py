"""The admin API's answers: security headers on every one, never a 500 when Redis is down."""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Callable

import httpx
import pytest
import redis.asyncio as aioredis

from server.settings import Settings
from tests.conftest import free_port

TOKEN = "admin-token-for-tests"
AUTH = {"authorization": f"Bearer {TOKEN}"}
TOKEN_SHA256 = hashlib.sha256(TOKEN.encode()).hexdigest()


SECURITY_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
}
ROUTES = [
    ("POST", "/v1/admin/sites/shop/pools/WINTER", {"codes": ["W-1"]}),
    ("GET", "/v1/admin/sites/shop/pools/WINTER", None),
    ("GET", "/v1/admin/sites/shop/coupons/W-1", None),
    ("POST", "/v1/admin/sites/shop/coupons/W-1/redeem", {"order_id": "o-1"}),
    ("GET", "/v1/admin/sites/shop/stats", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
async def test_every_admin_answer_carries_the_security_headers_refusals_included(
    make_client: Callable[..., httpx.AsyncClient], method: str, path: str, body: object
) -> None:
    admin, off = make_client(admin_token_sha256=TOKEN_SHA256), make_client()
    answers = [
        await admin.request(method, path, json=body, headers=AUTH),
        await admin.request(method, path, json=body, headers={"authorization": "Bearer wrong"}),
        await admin.request(method, path.replace("/shop/", "/nope/"), json=body, headers=AUTH),
        await off.request(method, path, json=body, headers=AUTH),
    ]
    assert [answer.status_code for answer in answers][1:] == [401, 404, 403]
    for answer in answers:
        assert {name: answer.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS


async def test_with_redis_down_the_admin_api_asks_for_a_retry(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    admin = make_client(redis_url=f"redis://127.0.0.1:{free_port()}/0", admin_token_sha256=TOKEN_SHA256)
    response = await admin.get("/v1/admin/sites/shop/pools/WINTER", headers=AUTH)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json() == {"error": "state store unavailable; retry later"}


async def test_a_pool_of_100_000_codes_goes_to_redis_in_commands_short_enough_for_visitors_to_pass(
    make_client: Callable[..., httpx.AsyncClient], redis: aioredis.Redis
) -> None:
    admin = make_client(admin_token_sha256=TOKEN_SHA256)
    before = await redis.config_get("slowlog-*")
    await redis.config_set("slowlog-log-slower-than", 0)  # every command, with its duration
    await redis.config_set("slowlog-max-len", 10_000)
    try:
        await redis.slowlog_reset()
        codes = [f"BULK-{n:06d}" for n in range(100_000)]
        response = await admin.post("/v1/admin/sites/shop/pools/BULK", json={"codes": codes}, headers=AUTH)
        assert response.json() == {"pool": "BULK", "size": 100_000, "added": 100_000}
        log = await redis.slowlog_get(10_000)
    finally:
        for name, value in before.items():
            await redis.config_set(name, value)
    adds_us = [entry["duration"] for entry in log if entry["command"].startswith(b"SADD")]
    # Redis runs one command at a time: a visitor's request waits behind the command in progress.
    assert statistics.median(adds_us) < Settings().redis_timeout_ms * 1000 / 5
