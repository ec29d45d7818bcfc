"""Redis stopped or black-holed under a running server: every batch is answered at once, degraded, with no
actions; readiness fails; and when Redis is back the same process serves normally again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from tests.conftest import LiveServer
from tests.fault.redis_server import RedisServer
from tests.wire import batch, event, new_id, post

DEGRADED_WITHIN_S = 0.1
NEVER_HANGS_S = 0.5


async def timed_post(client: httpx.AsyncClient) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = await post(client, batch(event("page_view"), visitor=new_id()))
    return time.perf_counter() - started, response


async def assert_degraded_quickly(client: httpx.AsyncClient, batches: int = 20) -> list[float]:
    timings = []
    for _ in range(batches):
        elapsed, response = await timed_post(client)
        assert response.status_code == 503
        assert response.headers["storetag-degraded"] == "redis"
        assert response.headers["retry-after"] == "5"
        assert response.headers["access-control-allow-origin"] == "https://shop.test"
        assert response.json() == {
            "actions": [],
            "withdraw": [],
            "error": "state store unavailable; retry later",
        }
        timings.append(elapsed)
    # Two cores shared with other test suites stall the test itself now and then (a p90 of 109 ms was seen
    # at load 9): the typical answer within the bound, and none anywhere near a hang.
    timings.sort()
    assert timings[len(timings) // 2] < DEGRADED_WITHIN_S, f"answers took {timings} s"
    assert timings[-1] < NEVER_HANGS_S, f"answers took {timings} s"
    return timings


async def answered_normally(client: httpx.AsyncClient, within_s: float = 10) -> list[int]:
    """Posts batches until one is answered 200; returns every status seen on the way."""
    statuses: list[int] = []
    deadline = time.monotonic() + within_s
    while not statuses or statuses[-1] != 200:
        assert time.monotonic() < deadline, f"still not answered normally after {within_s} s: {statuses[-5:]}"
        if statuses:
            await asyncio.sleep(0.05)
        statuses.append((await timed_post(client))[1].status_code)
    return statuses


async def test_with_redis_stopped_batches_are_answered_degraded_within_100_ms_and_readyz_fails(
    redis_server: RedisServer, start_api: Callable[..., LiveServer]
) -> None:
    api = start_api()
    async with httpx.AsyncClient(base_url=api.url) as client:
        await answered_normally(client)
        redis_server.stop()
        await assert_degraded_quickly(client)
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and "redis unavailable" in ready.json()["error"]
        assert (await client.get("/healthz")).status_code == 200


async def test_with_redis_black_holed_batches_are_still_answered_degraded_within_100_ms(
    redis_server: RedisServer, start_api: Callable[..., LiveServer]
) -> None:
    api = start_api()
    async with httpx.AsyncClient(base_url=api.url) as client:
        await answered_normally(client)
        redis_server.freeze()
        await assert_degraded_quickly(client)
        assert (await client.get("/readyz")).status_code == 503
        redis_server.thaw()


async def test_when_redis_comes_back_the_same_server_process_recovers_without_a_restart(
    redis_server: RedisServer, start_api: Callable[..., LiveServer]
) -> None:
    api = start_api()
    async with httpx.AsyncClient(base_url=api.url) as client:
        redis_server.stop()
        await assert_degraded_quickly(client, batches=3)
        redis_server.start()
        assert set(await answered_normally(client)) <= {200, 503}, "never a 500 while Redis comes back"
        assert (await client.get("/readyz")).status_code == 200
        visitor = new_id()
        await post(client, batch(event("page_view"), visitor=visitor))
        [welcome] = (await post(client, batch(event("page_view"), visitor=visitor))).json()["actions"]
        assert welcome["id"] == "welcome"
