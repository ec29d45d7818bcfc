"""Rate limits on /v1/events: per visitor and per client IP, shared through Redis, answered with 429 and
Retry-After; the client IP comes from X-Forwarded-For only behind a proxy the settings trust."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import msgspec
import pytest
import redis.asyncio as aioredis

from server.app import create_app
from server.ratelimit import RateLimiter
from server.settings import Settings
from server.write_behind import WriteBehind
from tests.conftest import SITES_FILE, LiveServer, free_port
from tests.test_events import stored
from tests.wire import batch, event, new_id, post

DAY_S = 86400


@pytest.fixture
async def client_from(
    settings: Settings, redis: aioredis.Redis
) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """Clients of one in-process app (limits from keyword arguments), each connecting from its own IP."""
    app = create_app(msgspec.structs.replace(settings, rate_limit_visitor=3, rate_limit_ip=5))
    clients: list[httpx.AsyncClient] = []

    def connect_from(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(ip, 40000))
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://storetag.test"))
        return clients[-1]

    yield connect_from
    for client in clients:
        await client.aclose()
    await app.state.runtime.store.redis.aclose()


async def test_a_visitor_past_its_limit_is_refused_with_429_and_retry_after_and_nothing_is_written(
    client_from: Callable[..., httpx.AsyncClient], redis: aioredis.Redis
) -> None:
    client, visitor = client_from("192.0.2.1"), new_id()
    for _ in range(3):
        assert (await post(client, batch(event("page_view"), visitor=visitor))).status_code == 200
    refused = await post(client, batch(event("page_view"), visitor=visitor))
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json() == {"error": f"too many batches; retry in {refused.headers['retry-after']} s"}
    assert refused.headers["access-control-allow-origin"] == "https://shop.test"
    assert (await stored(redis, visitor)).session.pages == 3
    assert (await post(client, batch(event("page_view"), visitor=new_id()))).status_code == 200


async def test_an_ip_past_its_limit_is_refused_for_every_visitor_while_other_ips_go_on(
    client_from: Callable[..., httpx.AsyncClient],
) -> None:
    busy, other = client_from("192.0.2.1"), client_from("2001:db8::7")
    statuses = [(await post(busy, batch(event("page_view"), visitor=new_id()))).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    assert (await post(other, batch(event("page_view"), visitor=new_id()))).status_code == 200


async def test_addresses_of_one_ipv6_64_share_one_limit(
    client_from: Callable[..., httpx.AsyncClient],
) -> None:
    """A phone or home network owns a whole /64 and can use a fresh address per request."""
    statuses = []
    for host in range(6):
        client = client_from(f"2001:db8:1:2::{host + 1:x}")
        statuses.append((await post(client, batch(event("page_view"), visitor=new_id()))).status_code)
    assert statuses == [200] * 5 + [429]
    neighbour = client_from("2001:db8:1:3::1")
    assert (await post(neighbour, batch(event("page_view"), visitor=new_id()))).status_code == 200


async def test_counters_start_again_each_window_and_expire_with_it(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis, per_visitor=2, per_ip=0, window_s=60)
    start = 1_800_000_000_000  # a window boundary
    assert [await limiter.wait_s("shop", "v1", "", start + n) for n in range(3)] == [0, 0, 60]
    assert await limiter.wait_s("shop", "v1", "", start + 59_001) == 1
    assert await limiter.wait_s("shop", "v1", "", start + 60_000) == 0
    ttls = [await redis.ttl(key) for key in await redis.keys("st:*")]
    assert ttls and all(0 < ttl <= 60 for ttl in ttls)


async def test_visitor_counters_share_the_visitors_hash_tag_and_ip_counters_the_sites(
    redis: aioredis.Redis,
) -> None:
    await RateLimiter(redis, per_visitor=2, per_ip=2, window_s=60).wait_s("shop", "v1", "192.0.2.1", 0)
    assert sorted(key.decode() for key in await redis.keys("st:*")) == [
        "st:{shop:v1}:rl:0",
        "st:{shop}:rl:192.0.2.1:0",
    ]


async def test_written_behind_an_ip_is_counted_in_memory_at_once_and_shared_through_redis_on_flush(
    redis: aioredis.Redis,
) -> None:
    one, other = (RateLimiter(redis, 0, 5, 60, WriteBehind(redis, 3600)) for _ in range(2))
    assert [await one.ip_wait_s("shop", "192.0.2.1", 0) for _ in range(6)] == [0] * 5 + [60]
    assert await redis.keys("st:*") == []
    assert one.behind is not None and other.behind is not None
    await one.behind.flush()
    assert await redis.get("st:{shop}:rl:192.0.2.1:0") == b"5"
    # Another process learns the total with its own next flush, and refuses from then on.
    assert await other.ip_wait_s("shop", "192.0.2.1", 0) == 0
    await other.behind.flush()
    assert await other.ip_wait_s("shop", "192.0.2.1", 0) == 60
    assert await redis.ttl("st:{shop}:rl:192.0.2.1:0") == 60


async def test_limits_set_to_zero_are_off(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis, per_visitor=0, per_ip=0, window_s=60)
    assert [await limiter.wait_s("shop", "v1", "192.0.2.1", 0) for _ in range(5)] == [0] * 5
    assert await redis.keys("st:*") == []


@pytest.fixture
def start_api(redis_url: str) -> Iterator[Callable[..., LiveServer]]:
    servers: list[LiveServer] = []

    def start(**env: str) -> LiveServer:
        port = free_port()
        # A day-long window: no window boundary falls inside the test.
        base = {"STORETAG_RATE_LIMIT_IP": "2", "STORETAG_RATE_WINDOW": str(DAY_S)}
        env = {"REDIS_URL": redis_url, "STORETAG_SITES": str(SITES_FILE), **base, **env}
        servers.append(LiveServer(["serve", "--port", str(port)], env, port))
        return servers[-1]

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


async def statuses_from(api: LiveServer, forwarded_for: list[str]) -> list[int]:
    async with httpx.AsyncClient(base_url=api.url) as client:
        batches = [(ip, batch(event("page_view"), visitor=new_id())) for ip in forwarded_for]
        return [(await post(client, body, **{"x-forwarded-for": ip})).status_code for ip, body in batches]


async def test_x_forwarded_for_is_ignored_unless_the_proxy_is_trusted(
    start_api: Callable[..., LiveServer], redis: aioredis.Redis
) -> None:
    untrusted = start_api()
    assert await statuses_from(untrusted, ["198.51.100.1", "198.51.100.2", "198.51.100.3"]) == [200, 200, 429]


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(
    start_api: Callable[..., LiveServer], redis: aioredis.Redis
) -> None:
    trusted = start_api(STORETAG_TRUSTED_PROXIES="127.0.0.1")
    forwarded = ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.1", "198.51.100.1"]
    assert await statuses_from(trusted, forwarded) == [200, 200, 200, 200, 429]
