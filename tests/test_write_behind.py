"""Writes behind the answer: rule stats and what recommendations learn are merged in memory and flushed
in one pipeline, at the latest on shutdown; reads in the same process flush first."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import msgspec
import pytest
import redis.asyncio as aioredis

from server.app import create_app
from server.settings import Settings
from server.stats import RuleStats
from server.write_behind import WriteBehind
from tests.wire import batch, event, new_id

# Long enough that no timed flush falls inside a test: what is in Redis was flushed by the test's action.
NEVER_MS = 3_600_000


async def call(app: object, body: bytes) -> int:
    """One POST /v1/events through the ASGI app, inside its lifespan (httpx's transport has none)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/events",
        "raw_path": b"/v1/events",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"text/plain"), (b"origin", b"https://shop.test")],
        "client": ("192.0.2.1", 40000),
        "server": ("storetag.test", 80),
    }
    sent = [False]
    status = [0]

    async def receive() -> dict[str, object]:
        if sent[0]:
            await asyncio.Event().wait()
        sent[0] = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            status[0] = int(str(message["status"]))

    await app(scope, receive, send)  # type: ignore[operator]
    return status[0]


def product_page(item: str, visitor: str) -> bytes:
    page = event("page_view", page_type="product")
    view = event("product_view", id=item, name=item.title(), price=12, category="kitchen")
    return msgspec.json.encode(batch(page, view, visitor=visitor))


async def test_what_events_teach_is_written_at_shutdown_at_the_latest(
    settings: Settings, redis: aioredis.Redis
) -> None:
    app = create_app(msgspec.structs.replace(settings, write_behind_ms=NEVER_MS))
    async with app.router.lifespan_context(app):
        for item in ("mug", "teapot", "mug"):
            assert await call(app, product_page(item, new_id())) == 200
        assert await redis.keys("st:{shop}:r:*") == []
    popular = [key for key in await redis.keys("st:{shop}:r:pop:*:all")]
    assert popular, "nothing learnt was written at shutdown"
    scores = dict(await redis.zrange(popular[0], 0, -1, withscores=True))
    assert set(scores) == {b"mug", b"teapot"} and scores[b"mug"] == pytest.approx(2 * scores[b"teapot"])
    assert await redis.hexists("st:{shop}:p", "teapot")
    await app.state.runtime.store.redis.aclose()


async def test_stats_read_in_the_process_that_counted_them_are_exact_before_any_flush(
    redis: aioredis.Redis,
) -> None:
    stats = RuleStats(redis, WriteBehind(redis, NEVER_MS / 1000))
    for _ in range(3):
        await stats.record("shop", 1, Counter({"promo:offered": 1, "promo:shown": 1}), {"promo": 2.5})
    assert await redis.keys("st:{shop}:stats:*") == []
    assert await stats.totals("shop", days=1, now_ms=1) == {
        "promo": {"offered": 3, "shown": 3, "revenue": 7.5}
    }


async def test_without_an_interval_each_caller_returns_once_its_own_counts_are_in_redis(
    redis: aioredis.Redis,
) -> None:
    stats = RuleStats(redis, WriteBehind(redis, 0))
    await asyncio.gather(*(stats.record("shop", 0, Counter({"promo:offered": 1}), {}) for _ in range(20)))
    assert await redis.hget("st:{shop}:stats:1970-01-01", "promo:offered") == b"20"


async def test_a_failed_flush_is_logged_and_dropped_and_the_next_one_goes_through(
    redis: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    behind = WriteBehind(redis, 0.01)
    stats = RuleStats(redis, behind)
    await redis.set("st:{shop}:stats:1970-01-01", "not a hash")
    with caplog.at_level(logging.WARNING, "storetag.write_behind"):
        await stats.record("shop", 0, Counter({"promo:offered": 1}), {})
        for _ in range(500):  # the timed flush, within 5 s on a busy machine
            if caplog.records:
                break
            await asyncio.sleep(0.01)
    assert "dropped" in caplog.records[0].getMessage()
    await redis.delete("st:{shop}:stats:1970-01-01")
    await stats.record("shop", 0, Counter({"promo:offered": 1}), {})
    await behind.close()
    assert await redis.hget("st:{shop}:stats:1970-01-01", "promo:offered") == b"1"
