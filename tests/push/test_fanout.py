"""Admin pushes to every subscriber or to a segment, expanded by the worker a page at a time: each device
gets the push once, also when a worker dies in the middle of the expansion or finishes a page late."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import msgspec

from server.push_queue import FanOut
from server.worker import Worker
from tests.push.conftest import drain, push_stats, send_push, shop, subscribe, track
from tests.push.receiver import Receiver
from tests.wire import new_id

# More than Redis keeps in a compact sorted set (128), so ZSCAN really goes page by page.
SUBSCRIBERS = 300
PAGE = 50


async def subscribe_many(api: httpx.AsyncClient, receiver: Receiver, count: int) -> list[str]:
    visitors = [new_id() for _ in range(count)]
    for start in range(0, count, 50):
        answers = await asyncio.gather(
            *(subscribe(api, visitor, receiver.device()) for visitor in visitors[start : start + 50])
        )
        assert {answer.status_code for answer in answers} == {201}
    return visitors


async def test_a_push_to_all_is_expanded_a_page_at_a_time_and_reaches_each_device_once(
    api: httpx.AsyncClient, receiver: Receiver, worker: Worker
) -> None:
    await subscribe_many(api, receiver, SUBSCRIBERS)
    worker.fanouts.page = PAGE
    queued = await send_push(api, all=True, title="Summer sale")
    await worker.run_once()
    queued_so_far = (await push_stats(api, queued["push"]))["visitors"]
    assert 0 < queued_so_far < SUBSCRIBERS  # one page, not the whole audience
    await drain(worker)
    per_device = Counter(got.device for got in receiver.received)
    assert len(per_device) == SUBSCRIBERS and set(per_device.values()) == {1}
    counts = await push_stats(api, queued["push"])
    assert (counts["visitors"], counts["sent"], counts["delivered"]) == (SUBSCRIBERS,) * 3


async def test_a_worker_that_dies_mid_expansion_or_finishes_a_page_late_sends_nothing_twice(
    api: httpx.AsyncClient, receiver: Receiver, worker: Worker
) -> None:
    await subscribe_many(api, receiver, SUBSCRIBERS)
    worker.fanouts.page = PAGE
    queued = await send_push(api, all=True, title="Everyone")
    await worker.run_once()  # the first page queued
    await worker.run_once()  # sent, and the second page queued
    # Another worker takes the second page's jobs and the rest of the audience, then dies.
    taken = await worker.queue.read(shop().key, "doomed", 1000)
    [(entry_id, rest)] = [(entry_id, job) for entry_id, job in taken if isinstance(job, FanOut)]
    # This one claims what the dead one left at once, and finishes the audience.
    worker.settings = msgspec.structs.replace(worker.settings, push_claim_idle_ms=0)
    await drain(worker)
    # The dead one was only slow: it queues the page it had taken, too late.
    await worker.fanouts.expand(shop(), entry_id, rest, 0)
    await drain(worker)
    per_device = Counter(got.device for got in receiver.received)
    assert len(per_device) == SUBSCRIBERS and set(per_device.values()) == {1}
    assert (await push_stats(api, queued["push"]))["visitors"] == SUBSCRIBERS


async def test_a_push_to_a_segment_is_evaluated_by_the_worker_on_each_subscriber(
    api: httpx.AsyncClient, receiver: Receiver, worker: Worker
) -> None:
    visitors = await subscribe_many(api, receiver, 140)
    loyal = visitors[::7]
    for visitor in loyal:
        for order in range(3):
            await track(api, visitor, "purchase", order_id=f"{visitor}-{order}", value=20)
    worker.fanouts.page = PAGE
    queued = await send_push(api, segment="loyal_customer", title="Early access")
    await drain(worker)
    reached = {got.notification.visitor for got in receiver.received}
    assert reached == set(loyal) and len(receiver.received) == len(loyal)
    assert (await push_stats(api, queued["push"]))["visitors"] == len(loyal)
