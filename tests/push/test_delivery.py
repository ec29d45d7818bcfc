"""Admin pushes through the worker to the local push service: what arrives, decrypted, with which
headers, and what the push service's answers do (410, 429, 500)."""

from __future__ import annotations

import httpx
import msgspec

from server import protocol as p
from server.worker import Worker
from tests.push.conftest import AUTH, Clock, drain, identify, push_stats, send_push, subscribe, track
from tests.push.receiver import Answer, Receiver
from tests.wire import new_id


async def test_a_push_to_a_visitor_arrives_decrypted_on_each_device_with_its_headers(
    api: httpx.AsyncClient, receiver: Receiver, worker: Worker
) -> None:
    visitor, phone, laptop = new_id(), receiver.device(), receiver.device()
    assert (await subscribe(api, visitor, phone)).status_code == 201
    assert (await subscribe(api, visitor, laptop)).status_code == 201
    order = {
        "visitor": visitor,
        "title": "Back in stock",
        "body": "The blue mug is back.",
        "url": "https://shop.test/p/mug",
        "icon": "https://shop.test/icon.png",
        "buttons": [{"action": "buy", "title": "Buy now", "url": "https://shop.test/cart"}],
        "ttl": 3600,
        "urgency": "high",
        "topic": "restock",
    }
    queued = await send_push(api, **order)
    assert list(queued) == ["push"]
    await drain(worker)
    assert receiver.refused == []
    expected = p.Notification(
        push=queued["push"],
        title="Back in stock",
        body="The blue mug is back.",
        icon="https://shop.test/icon.png",
        url="https://shop.test/p/mug",
        buttons=[p.NotificationButton("buy", "Buy now", "https://shop.test/cart")],
        api="https://tags.test",
        site="shop",
        visitor=visitor,
    )
    for device in (phone, laptop):
        [got] = receiver.for_device(device)
        assert got.notification == expected
        assert got.headers == {"TTL": "3600", "Urgency": "high", "Topic": "restock"}
    counts = await push_stats(api, queued["push"])
    assert (counts["visitors"], counts["sent"], counts["delivered"], counts["failed"]) == (1, 2, 2, {})


async def test_a_device_the_push_service_calls_gone_is_unsubscribed(
    api: httpx.AsyncClient, receiver: Receiver, worker: Worker
) -> None:
    visitor, gone, kept = new_id(), receiver.device(), receiver.device()
    await subscribe(api, visitor, gone)
    await subscribe(api, visitor, kept)
    receiver.answer(gone, Answer(410))
    first = await send_push(api, visitor=visitor, title="One")
    await drain(worker)
    assert (await push_stats(api, first["push"]))["failed"] == {"gone": 1}
    second = await send_push(api, visitor=visitor, title="Two")
    await drain(worker)
    assert receiver.requests["d0"] == 1  # never asked again
    assert [got.notification.title for got in receiver.for_device(kept)] == ["One", "Two"]
    assert (await push_stats(api, second["push"]))["sent"] == 1


async def test_429_is_retried_after_retry_after_and_then_delivered(
    api: httpx.AsyncClient, receiver: Receiver, worker: Worker, clock: Clock
) -> None:
    visitor, device = new_id(), receiver.device()
    await subscribe(api, visitor, device)
    receiver.answer(device, Answer(429, retry_after="120"))
    queued = await send_push(api, visitor=visitor, title="Flash sale")
    await drain(worker)
    assert receiver.for_device(device) == []
    clock.advance(119)
    await drain(worker)
    assert receiver.requests["d0"] == 1  # Retry-After is honoured
    clock.advance(2)
    await drain(worker)
    [got] = receiver.for_device(device)
    assert got.notification.push == queued["push"]
    counts = await push_stats(api, queued["push"])
    assert (counts["sent"], counts["retried"], counts["delivered"], counts["failed"]) == (1, 1, 1, {})


async def test_a_push_that_keeps_failing_is_dead_lettered_with_the_reason(
    api: httpx.AsyncClient, receiver: Receiver, worker: Worker, clock: Clock
) -> None:
    visitor, device = new_id(), receiver.device()
    await subscribe(api, visitor, device)
    receiver.answer(device, Answer(500), Answer(500), Answer(500), Answer(201))
    queued = await send_push(api, visitor=visitor, title="Never")
    for _ in range(4):  # attempts 1, 2 and 3 (the limit in these settings), with backoff between them
        await drain(worker)
        clock.advance(10)
    assert receiver.requests["d0"] == 3 and receiver.received == []
    dead = (await api.get("/v1/admin/sites/shop/push/dead", headers=AUTH)).json()["dead"]
    assert [(d["push"], d["visitor"], d["reason"]) for d in dead] == [
        (queued["push"], visitor, "HTTP 500 after 3 attempts")
    ]
    counts = await push_stats(api, queued["push"])
    assert (counts["retried"], counts["failed"]) == (2, {"http_500": 1})


async def test_a_push_to_a_customer_reaches_every_device_they_identified_on(
    api: httpx.AsyncClient, receiver: Receiver, worker: Worker
) -> None:
    phone_visitor, laptop_visitor, stranger = new_id(), new_id(), new_id()
    phone, laptop, other = receiver.device(), receiver.device(), receiver.device()
    await subscribe(api, phone_visitor, phone)
    await subscribe(api, laptop_visitor, laptop)
    await subscribe(api, stranger, other)
    await identify(api, phone_visitor, "cust-7")
    await identify(api, laptop_visitor, "cust-7")
    queued = await send_push(api, customer="cust-7", title="Your order shipped")
    await drain(worker)
    assert (await push_stats(api, queued["push"]))["visitors"] == 2
    assert {got.device for got in receiver.received} == {"d0", "d1"}
    # And a push to one of their visitors follows the person to the other device too.
    await send_push(api, visitor=phone_visitor, title="For the person")
    await drain(worker)
    person = [got for got in receiver.received if got.notification.title == "For the person"]
    assert {(got.device, got.notification.visitor) for got in person} == {
        ("d0", phone_visitor),
        ("d1", laptop_visitor),
    }


async def test_a_push_to_a_segment_or_to_all_reaches_just_those_subscribers(
    api: httpx.AsyncClient, receiver: Receiver, worker: Worker
) -> None:
    buyer, browser, unsubscribed = new_id(), new_id(), new_id()
    await subscribe(api, buyer, receiver.device())
    await subscribe(api, browser, receiver.device())
    for order in range(3):
        await track(api, buyer, "purchase", order_id=f"o{order}", value=20)
    await track(api, unsubscribed, "purchase", order_id="x", value=500)
    loyal = await send_push(api, segment="loyal_customer", title="Thanks, regular")
    everyone = await send_push(api, all=True, title="Summer sale")
    assert list(loyal) == list(everyone) == ["push"]  # answered at once; the worker finds the audience
    await drain(worker)
    assert (await push_stats(api, loyal["push"]))["visitors"] == 1
    assert (await push_stats(api, everyone["push"]))["visitors"] == 2
    titles = sorted((got.device, got.notification.title) for got in receiver.received)
    assert titles == [("d0", "Summer sale"), ("d0", "Thanks, regular"), ("d1", "Summer sale")]


async def test_a_click_reported_by_the_service_worker_counts_for_the_push_and_its_rule(
    api: httpx.AsyncClient, receiver: Receiver, worker: Worker
) -> None:
    visitor = new_id()
    await subscribe(api, visitor, receiver.device())
    queued = await send_push(api, visitor=visitor, title="Click me")
    await drain(worker)
    await track(api, visitor, "push_clicked", push=queued["push"], action="")
    await track(api, visitor, "push_clicked", push="not-a-push-we-sent")
    assert (await push_stats(api, queued["push"]))["clicked"] == 1
    rules = msgspec.json.decode((await api.get("/v1/admin/sites/shop/push/stats", headers=AUTH)).content)
    assert rules["rules"][""]["clicked"] == 1 and rules["rules"][""]["delivered"] == 1
    assert (
        await api.get("/v1/admin/sites/shop/push/not-a-push-we-sent/stats", headers=AUTH)
    ).status_code == 404


async def test_sending_needs_exactly_one_audience_and_a_site_with_keys(api: httpx.AsyncClient) -> None:
    both = await api.post(
        "/v1/admin/sites/shop/push", json={"title": "x", "all": True, "customer": "c"}, headers=AUTH
    )
    assert both.status_code == 400 and "exactly one" in both.json()["error"]
    unknown = await api.post(
        "/v1/admin/sites/shop/push", json={"title": "x", "segment": "nope"}, headers=AUTH
    )
    assert unknown.status_code == 400 and "nope" in unknown.json()["error"]
    keyless = await api.post("/v1/admin/sites/other/push", json={"title": "x", "all": True}, headers=AUTH)
    assert keyless.status_code == 409 and "storetag vapid" in keyless.json()["error"]
    anonymous = await api.post("/v1/admin/sites/shop/push", json={"title": "x", "all": True})
    assert anonymous.status_code == 401
