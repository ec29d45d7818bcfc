"""Real `storetag worker` processes: one killed with SIGKILL in the middle of a batch, another takes its
unacknowledged jobs over, and every device gets its push (at least once); with learning in workers, one
writes what the servers learned."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from server.recs_store import learner_key
from server.rules import viewed_together
from server.settings import Settings
from server.testing import Simulator
from tests.browser.conftest import eventually
from tests.push.conftest import PUSH_SITES, push_stats, send_push, shop, subscribe, track
from tests.push.receiver import Receiver
from tests.wire import new_id

SUBSCRIBERS = 200
NO_COUNTS = {"visitors": 0, "sent": 0, "delivered": 0, "clicked": 0, "retried": 0, "failed": {}}


class WorkerProcess:
    def __init__(self, name: str, redis_url: str, **env: str) -> None:
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "storetag"), "worker", "--name", name],
            env={
                **os.environ,
                "REDIS_URL": redis_url,
                "STORETAG_SITES": str(PUSH_SITES),
                "STORETAG_PUSH_ALLOW_PRIVATE": "1",
                "STORETAG_PUSH_POLL_MS": "50",
                "STORETAG_PUSH_CLAIM_IDLE_MS": "1000",
                **env,
            },
        )

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(10)


@pytest.fixture
def workers(redis_url: str) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()


async def test_a_worker_killed_mid_batch_loses_nothing_another_takes_over(
    api: httpx.AsyncClient, redis: aioredis.Redis, redis_url: str, workers: list[WorkerProcess]
) -> None:
    receiver = Receiver(shop().vapid_public_key, delay_s=0.02)
    await receiver.start()
    try:
        for _ in range(SUBSCRIBERS):
            await subscribe(api, new_id(), receiver.device())
        queued = await send_push(api, all=True, title="Everyone")

        # Four sends in flight, 20 ms each: the batch takes about a second, and it is killed well before.
        first = WorkerProcess("first", redis_url, STORETAG_PUSH_CONCURRENCY="4")
        workers.append(first)
        await until(lambda: len(receiver.received) >= 20, within_s=30)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(10)
        delivered_by_first = {got.device for got in receiver.received}
        assert len(delivered_by_first) < SUBSCRIBERS
        pending = await redis.xpending("st:{shop}:push:stream", "workers")
        assert pending["pending"] > 0 and {c["name"] for c in pending["consumers"]} == {b"first"}

        second = WorkerProcess("second", redis_url)
        workers.append(second)
        await until(lambda: len({got.device for got in receiver.received}) == SUBSCRIBERS, within_s=60)
        assert {got.notification.push for got in receiver.received} == {queued["push"]}
        assert receiver.refused == []
        await eventually(lambda: pending_count(redis), 0, within_s=10)
        assert (await push_stats(api, queued["push"]))["visitors"] == SUBSCRIBERS
        assert second.stop() == 0  # SIGTERM: it finishes and leaves cleanly
    finally:
        await receiver.stop()


async def test_storetag_worker_knows_the_segments_of_the_rule_modules(
    api: httpx.AsyncClient, redis_url: str, workers: list[WorkerProcess]
) -> None:
    receiver = Receiver(shop().vapid_public_key)
    await receiver.start()
    try:
        loyal, other = new_id(), new_id()
        await subscribe(api, loyal, receiver.device())
        await subscribe(api, other, receiver.device())
        for order in range(3):
            await track(api, loyal, "purchase", order_id=f"o{order}", value=20)
        queued = await send_push(api, segment="loyal_customer", title="Early access")
        workers.append(WorkerProcess("segments", redis_url))
        await until(lambda: len(receiver.received) == 1, within_s=30)
        expected = {**NO_COUNTS, "visitors": 1, "sent": 1, "delivered": 1}
        await eventually(lambda: push_stats(api, queued["push"]), expected, within_s=10)
        assert [(got.device, got.notification.visitor) for got in receiver.received] == [("d0", loyal)]
    finally:
        await receiver.stop()


async def pending_count(redis: aioredis.Redis) -> int:
    return int((await redis.xpending("st:{shop}:push:stream", "workers"))["pending"])


async def until(condition: Callable[[], bool], within_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {within_s} s")
        await asyncio.sleep(0.02)


async def test_a_worker_writes_what_the_servers_learned(
    redis: aioredis.Redis, redis_url: str, workers: list[WorkerProcess]
) -> None:
    workers.append(WorkerProcess("learner", redis_url))
    await eventually(lambda: redis.exists(learner_key("shop")), 1, within_s=15)  # so the server leaves it

    server = Simulator(
        rules=[],
        redis=redis,
        settings=Settings(write_behind_ms=0, recs_cache_ms=0, recs_learn_in_workers=True),
    )
    for visitor in range(2):
        server.new_visitor()
        await server.product_page("mug", name=f"Mug {visitor}", price=10)
        await server.product_page("beans", name="Beans", price=10)
    server.new_visitor()
    await server.product_page("mug", name="Mug", price=10)
    await eventually(lambda: server.recommend(viewed_together(fallback=False)), ["beans"], within_s=15)
