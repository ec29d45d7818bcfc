"""Redis with AOF (appendfsync everysec) crashes and restarts: every key family the server writes comes back,
and the same server process goes on serving from it."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from tests.browser.conftest import eventually
from tests.conftest import LiveServer, free_port
from tests.fault.redis_server import AOF_EVERYSEC, RedisServer
from tests.push.conftest import PUSH_SITES
from tests.rulefiles import rule_source, write_rules
from tests.wire import SHOP_ORIGIN, batch, event, new_id, post

TOKEN = "admin-token-for-tests"
AUTH = {"authorization": f"Bearer {TOKEN}"}
# A public address (nothing is sent: no worker runs here) and a valid P-256 point.
PUBLIC_ENDPOINT = "https://8.8.8.8/push/device-1"
PUBLIC_POINT = "BFF4LvqP7BRo1YGYEo-wMN0e3jedVhtluGlBZZ7-w43D3NWZxQN_nphCZubXiq_6a1E7GHxRzWTTzkyHo5SLmtY"
POOL_OFFER = rule_source(trigger="exit_intent", action='Offer("offer.html", pool="WINTER")')

# Every key family on main, by KEYS pattern. A new family is one line here, and its writes in journey().
FAMILIES = {
    "visitor state": "st:{shop:*}:state",
    "coupon pool": "st:{shop}:pool:*",
    "issued code": "st:{shop}:code:*",
    "redeemed code": "st:{shop}:redeemed:*",
    "rule stats": "st:{shop}:stats:*",
    "push devices": "st:{shop:*}:push",
    "push subscribers": "st:{shop}:push:subscribers",
    "customer's visitors": "st:{shop:c:*}:visitors",
    "pending pushes": "st:{shop:*}:pushpending",
    "scheduled pushes": "st:{shop}:push:due",
    "scheduled push jobs": "st:{shop}:push:jobs",
}

Snapshot = dict[str, dict[bytes, object]]


@dataclass
class Journey:
    visitor: str
    code: str


async def journey(client: httpx.AsyncClient) -> Journey:
    """A shop and a visitor writing every key family: a pool, visits, an offer and an order redeeming it."""
    codes = {"codes": [f"W-{n}" for n in range(5)]}
    assert (await client.post("/v1/admin/sites/shop/pools/WINTER", json=codes, headers=AUTH)).is_success
    visitor = new_id()
    [offer] = (await post(client, batch(event("page_view"), visitor=visitor))).json()["actions"]
    second = (await post(client, batch(event("page_view"), visitor=visitor))).json()["actions"]
    assert {action["id"] for action in second} == {"pool_offer", "welcome"}
    await post(client, batch(event("action_shown", action="welcome"), visitor=visitor))
    order = event("purchase", order_id="o-1", value=40, code=offer["code"])
    assert (await post(client, batch(order, visitor=visitor))).is_success
    await push_journey(client)
    return Journey(visitor, offer["code"])


async def push_journey(client: httpx.AsyncClient) -> None:
    """Another visitor subscribes a device, identifies and leaves a cart: an abandoned-cart push waits."""
    visitor = new_id()
    keys = {"p256dh": PUBLIC_POINT, "auth": "AAAAAAAAAAAAAAAAAAAAAA"}
    body = {"site": "shop", "visitor": visitor, "subscription": {"endpoint": PUBLIC_ENDPOINT, "keys": keys}}
    subscribed = await client.post(
        "/v1/push/subscriptions",
        content=json.dumps(body).encode(),
        headers={"content-type": "text/plain", "origin": SHOP_ORIGIN},
    )
    assert subscribed.status_code == 201, subscribed.text
    signature = hmac.new(b"test-secret", b"cust-1", hashlib.sha256).hexdigest()
    identify = event("identify", customer_id="cust-1", signature=signature)
    assert (
        await post(client, batch(identify, event("cart_add", id="mug", price=12), visitor=visitor))
    ).is_success


async def snapshot(redis: aioredis.Redis) -> Snapshot:
    """Each family's keys and their values; every key must still expire."""
    families: Snapshot = {}
    for family, pattern in FAMILIES.items():
        keys = sorted(await redis.keys(pattern))
        assert all([await redis.ttl(key) > 0 for key in keys]), f"a {family} key lost its expiry"
        families[family] = {key: await value_of(redis, key) for key in keys}
    return families


async def value_of(redis: aioredis.Redis, key: bytes) -> object:
    """A key's value, whatever its type, in a form that compares equal however Redis laid it out."""
    kind = (await redis.type(key)).decode()
    read = {
        "string": lambda: redis.get(key),
        "set": lambda: redis.smembers(key),
        "hash": lambda: redis.hgetall(key),
        "zset": lambda: redis.zrange(key, 0, -1, withscores=True),
        "list": lambda: redis.lrange(key, 0, -1),
        "stream": lambda: redis.xrange(key),
    }
    return kind, await read[kind]()


async def fsynced(redis: aioredis.Redis) -> bool:
    info = await redis.info("persistence")
    return bool(info["aof_buffer_length"] == 0 and info["aof_pending_bio_fsync"] == 0)


@dataclass
class Restart:
    before: Snapshot
    after: Snapshot
    journey: Journey
    client: httpx.AsyncClient


@pytest.fixture(scope="module")
async def restart(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Restart]:
    """One journey, then Redis killed with SIGKILL once the AOF is on disk, and started again."""
    data = tmp_path_factory.mktemp("aof")
    redis_server = RedisServer(data, *AOF_EVERYSEC)
    rules = write_rules(Path(tmp_path_factory.mktemp("rules")), pool_offer=POOL_OFFER)
    port = free_port()
    env = {
        "REDIS_URL": redis_server.url,
        "STORETAG_SITES": str(PUSH_SITES),  # the shop with web push on, so that pushes are scheduled
        "STORETAG_RULES": str(rules),
        "STORETAG_ADMIN_TOKEN_SHA256": hashlib.sha256(TOKEN.encode()).hexdigest(),
    }
    api = LiveServer(["serve", "--port", str(port)], env, port)
    client = httpx.AsyncClient(base_url=api.url)
    try:
        done = await journey(client)
        # Stats are written behind the answers; reading them makes the server flush what it holds.
        assert (await client.get("/v1/admin/sites/shop/stats", headers=AUTH)).is_success
        async with aioredis.Redis.from_url(redis_server.url) as redis:
            before = await snapshot(redis)
            await eventually(lambda: fsynced(redis), True)
        redis_server.kill()
        redis_server.start()
        await eventually(lambda: ready(client), True, within_s=10)
        async with aioredis.Redis.from_url(redis_server.url) as redis:
            after = await snapshot(redis)
        yield Restart(before, after, done, client)
    finally:
        await client.aclose()
        api.stop()
        redis_server.stop()


async def ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


@pytest.mark.parametrize("family", FAMILIES)
async def test_every_key_family_survives_a_redis_crash_with_aof(restart: Restart, family: str) -> None:
    assert restart.before[family], f"the journey wrote no {family}"
    assert restart.after[family] == restart.before[family]


async def test_after_the_restart_the_same_server_serves_from_the_restored_state(restart: Restart) -> None:
    client, visitor = restart.client, restart.journey.visitor
    pool = await client.get("/v1/admin/sites/shop/pools/WINTER", headers=AUTH)
    assert pool.json()["size"] == 4
    verdict = (await client.get(f"/v1/admin/sites/shop/coupons/{restart.journey.code}", headers=AUTH)).json()
    assert (verdict["valid"], verdict["reason"], verdict["rule"]) == (False, "already redeemed", "pool_offer")
    [offer] = (await post(client, batch(event("page_view"), visitor=visitor))).json()["actions"]
    assert offer["id"] == "pool_offer", "the welcome stays capped at once ever"
    assert offer["code"] == restart.journey.code, "the visitor keeps their code"
