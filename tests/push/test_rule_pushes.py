"""A rule's delayed push through the real event path: scheduled by a batch, sent by the worker once due,
cancelled by a later purchase; stats per rule."""

from __future__ import annotations

from collections.abc import Awaitable

import httpx
import redis.asyncio as aioredis

from server.testing import PUSH_SITE, Simulator
from server.worker import Worker
from tests.push.conftest import AUTH, Clock, drain, identify, shop, subscribe, track
from tests.push.receiver import Receiver
from tests.wire import new_id


async def test_an_abandoned_cart_push_is_sent_thirty_minutes_later(
    api: httpx.AsyncClient, receiver: Receiver, worker: Worker, clock: Clock
) -> None:
    visitor, device = new_id(), receiver.device()
    await subscribe(api, visitor, device)
    await track(api, visitor, "cart_add", id="mug", price=12, qty=2)
    clock.advance(29 * 60)
    await drain(worker)
    assert receiver.received == []
    clock.advance(61)
    await drain(worker)
    [got] = receiver.for_device(device)
    assert got.notification.rule == "abandoned_cart" and got.notification.visitor == visitor
    assert got.notification.title == "You left something in your cart"
    assert got.headers["Topic"] == "abandoned_cart"
    stats = (await api.get("/v1/admin/sites/shop/push/stats", headers=AUTH)).json()["rules"]
    assert stats["abandoned_cart"]["sent"] == 1 and stats["abandoned_cart"]["delivered"] == 1


async def test_a_purchase_before_the_delay_cancels_the_push(
    api: httpx.AsyncClient, receiver: Receiver, worker: Worker, clock: Clock
) -> None:
    visitor = new_id()
    await subscribe(api, visitor, receiver.device())
    await track(api, visitor, "cart_add", id="mug", price=12)
    clock.advance(10 * 60)
    await track(api, visitor, "purchase", order_id="o-1", value=12)
    clock.advance(3600)
    await drain(worker)
    assert receiver.requests == {}


async def test_a_rule_push_for_an_identified_visitor_reaches_their_other_device(
    api: httpx.AsyncClient, receiver: Receiver, worker: Worker, clock: Clock
) -> None:
    desktop, phone_visitor, phone = new_id(), new_id(), receiver.device()
    await subscribe(api, phone_visitor, phone)
    await identify(api, phone_visitor, "cust-9")
    await identify(api, desktop, "cust-9")  # the desktop never subscribed
    await track(api, desktop, "cart_add", id="lamp", price=40)
    clock.advance(31 * 60)
    await drain(worker)
    [got] = receiver.for_device(phone)
    assert got.notification.rule == "abandoned_cart" and got.notification.visitor == phone_visitor


async def test_a_push_scheduled_before_the_visitor_identifies_reaches_every_device_of_the_customer(
    api: httpx.AsyncClient, receiver: Receiver, worker: Worker, clock: Clock
) -> None:
    laptop_visitor, phone_visitor = new_id(), new_id()
    laptop, phone = receiver.device(), receiver.device()
    await subscribe(api, phone_visitor, phone)
    await identify(api, phone_visitor, "cust-11")
    await subscribe(api, laptop_visitor, laptop)
    await track(api, laptop_visitor, "cart_add", id="lamp", price=40)  # scheduled while anonymous
    clock.advance(10 * 60)
    await identify(api, laptop_visitor, "cust-11")
    clock.advance(21 * 60)
    await drain(worker)
    assert {(got.device, got.notification.visitor) for got in receiver.received} == {
        ("d0", laptop_visitor),
        ("d1", phone_visitor),
    }
    assert all(got.notification.rule == "abandoned_cart" for got in receiver.received)


async def test_a_purchase_cancels_a_push_pending_for_an_identified_visitor_without_a_device(
    api: httpx.AsyncClient, receiver: Receiver, worker: Worker, clock: Clock
) -> None:
    desktop, phone_visitor, phone = new_id(), new_id(), receiver.device()
    await subscribe(api, phone_visitor, phone)
    await identify(api, phone_visitor, "cust-12")
    await identify(api, desktop, "cust-12")
    await track(api, desktop, "cart_add", id="lamp", price=40)
    clock.advance(20 * 60)
    await track(api, desktop, "purchase", order_id="o-12", value=40)
    clock.advance(3600)
    await drain(worker)
    assert receiver.requests == {}


async def push_commands_during(redis: aioredis.Redis, batch: Awaitable[None]) -> list[str]:
    """The commands on the real Redis that touch a push key while the batch is handled (MONITOR)."""
    marker = f"end-{new_id()}"
    seen: list[str] = []
    async with redis.monitor() as monitor:
        await batch
        await redis.echo(marker)
        while marker not in (command := (await monitor.next_command())["command"]):
            seen.append(command)
    return [command for command in seen if "}:push" in command]


async def test_a_purchase_from_a_visitor_with_nothing_pending_makes_no_push_call_to_redis(
    api: httpx.AsyncClient, redis: aioredis.Redis, receiver: Receiver, worker: Worker
) -> None:
    never_subscribed, subscribed = new_id(), new_id()
    await track(api, never_subscribed, "cart_add", id="mug", price=12)
    assert (
        await push_commands_during(redis, track(api, never_subscribed, "purchase", order_id="a", value=12))
        == []
    )
    # A visitor with a push pending: the purchase looks for it, and cancels it.
    await subscribe(api, subscribed, receiver.device())
    await track(api, subscribed, "cart_add", id="mug", price=12)
    assert await push_commands_during(redis, track(api, subscribed, "purchase", order_id="b", value=12)) != []
    assert await worker.queue.scheduled(shop().key) == {}


async def test_a_purchase_cancels_a_push_that_is_due_while_the_workers_are_down() -> None:
    sim = Simulator(rules=["abandoned_cart"], site=PUSH_SITE)  # one clock for the server and the worker
    await sim.subscribe_push()
    await sim.track("cart_add", id="mug", price=12)
    sim.advance(hours=3)  # due for hours, and no worker ran
    await sim.track("purchase", order_id="o-late", value=12)
    assert await sim.send_due_pushes() == []
