"""POST and DELETE /v1/push/subscriptions: what is stored, what is refused (400, nothing stored), and
endpoints that would make the server reach into a private network (SSRF), refused when stored and again
when sent."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from server.protocol import PushKeys, PushSubscription
from server.push_endpoints import PublicResolver, UnsafeEndpoint
from server.push_sender import Message, Sender
from server.push_subscriptions import Device, PushSubscriptions
from server.settings import Settings
from server.sites import load_sites
from server.worker import Worker
from tests.push.conftest import AUTH, PUSH_SITES, drain, push_stats, send_push, shop, subscribe
from tests.push.receiver import Device as Browser
from tests.push.receiver import Receiver, b64url
from tests.wire import SHOP_ORIGIN, new_id


async def devices_stored(redis: aioredis.Redis) -> int:
    return len(await redis.keys("st:{shop:*}:push"))


async def delete(
    api: httpx.AsyncClient, visitor: str, endpoint: str, origin: str = SHOP_ORIGIN
) -> httpx.Response:
    body = json.dumps({"site": "shop", "visitor": visitor, "endpoint": endpoint}).encode()
    return await api.request(
        "DELETE",
        "/v1/push/subscriptions",
        content=body,
        headers={"content-type": "text/plain", "origin": origin},
    )


async def test_a_subscription_is_stored_per_device_and_deleted_by_its_endpoint(
    api: httpx.AsyncClient, receiver: Receiver, worker: Worker, redis: aioredis.Redis
) -> None:
    visitor, phone, laptop = new_id(), receiver.device(), receiver.device()
    first = await subscribe(api, visitor, phone)
    assert first.status_code == 201 and first.headers["access-control-allow-origin"] == SHOP_ORIGIN
    await subscribe(api, visitor, laptop)
    await subscribe(api, visitor, phone)  # the tag posts it again on a later visit: still one device
    assert (await delete(api, visitor, phone.endpoint)).status_code == 204
    queued = await send_push(api, visitor=visitor, title="Only the laptop")
    await drain(worker)
    assert [got.device for got in receiver.received] == ["d1"]
    assert (await push_stats(api, queued["push"]))["sent"] == 1
    fields = await redis.hgetall(f"st:{{shop:{visitor}}}:push")
    assert {name[:2] for name in fields} == {b"s:", b"t:"}  # the device, and when it last got a push
    assert 0 < await redis.ttl(f"st:{{shop:{visitor}}}:push") <= Settings().state_ttl_s


def p256dh() -> str:
    return str(Browser("https://push.example").subscription()["keys"]["p256dh"])


BAD_SUBSCRIPTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "endpoint not a URL": ({"endpoint": "not a url"}, "https URL"),
    "plain http": ({"endpoint": "http://push.example.com/x"}, "https URL"),
    "no host": ({"endpoint": "https:///x"}, "no host"),
    "credentials": ({"endpoint": "https://user:pw@push.example.com/x"}, "credentials"),
    "p256dh too short": ({"p256dh": b64url(b"\x04" + bytes(31))}, "65-byte"),
    "p256dh not on the curve": ({"p256dh": b64url(b"\x04" + bytes(64))}, "not a point on P-256"),
    "p256dh not base64url": ({"p256dh": "abc+/"}, "p256dh"),
    "auth of 8 bytes": ({"auth": b64url(bytes(8))}, "16 bytes"),
    "loopback literal": ({"endpoint": "https://127.0.0.1/push"}, "not a public address"),
    "private literal": ({"endpoint": "https://10.1.2.3/push"}, "not a public address"),
    "link-local literal": ({"endpoint": "https://169.254.169.254/latest"}, "not a public address"),
    "IPv6 loopback": ({"endpoint": "https://[::1]:8443/push"}, "not a public address"),
    "name resolving to loopback": ({"endpoint": "https://localhost/push"}, "resolves to non-public"),
    "keys missing": ({"keys": None}, "keys"),
}


@pytest.mark.parametrize("case", BAD_SUBSCRIPTIONS)
async def test_a_bad_subscription_is_refused_with_a_clear_message_and_nothing_stored(
    case: str, make_client: Callable[..., httpx.AsyncClient], redis: aioredis.Redis
) -> None:
    api = make_client(sites_file=PUSH_SITES)  # production settings: private endpoints refused
    change, message = BAD_SUBSCRIPTIONS[case]
    keys = {"p256dh": change.get("p256dh", p256dh()), "auth": change.get("auth", b64url(bytes(16)))}
    subscription = {"endpoint": change.get("endpoint", "https://push.example.com/x"), "keys": keys}
    if "keys" in change:
        del subscription["keys"]
    body = json.dumps({"site": "shop", "visitor": new_id(), "subscription": subscription}).encode()
    answer = await api.post(
        "/v1/push/subscriptions", content=body, headers={"content-type": "text/plain", "origin": SHOP_ORIGIN}
    )
    assert answer.status_code == 400 and message in answer.json()["error"], answer.text
    assert await devices_stored(redis) == 0


async def test_a_page_of_another_origin_cannot_subscribe_or_unsubscribe(
    api: httpx.AsyncClient, receiver: Receiver, redis: aioredis.Redis
) -> None:
    body = {"site": "shop", "visitor": new_id(), "subscription": receiver.device().subscription()}
    answer = await api.post(
        "/v1/push/subscriptions",
        content=json.dumps(body).encode(),
        headers={"content-type": "text/plain", "origin": "https://evil.test"},
    )
    assert answer.status_code == 403 and await devices_stored(redis) == 0
    assert (await delete(api, new_id(), "https://x.test/", origin="https://evil.test")).status_code == 403


async def test_the_delete_preflight_answers_the_sites_origins_only(api: httpx.AsyncClient) -> None:
    def preflight(origin: str) -> Any:
        return api.options(
            "/v1/push/subscriptions",
            headers={"origin": origin, "access-control-request-method": "DELETE"},
        )

    allowed = await preflight(SHOP_ORIGIN)
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SHOP_ORIGIN
    assert "DELETE" in allowed.headers["access-control-allow-methods"]
    assert (await preflight("https://evil.test")).status_code == 403


async def test_a_name_that_resolves_to_a_private_address_at_send_time_is_refused() -> None:
    """DNS rebinding: a name that was public when stored and points inside the network when sent."""
    with pytest.raises(UnsafeEndpoint):
        await PublicResolver(allow_private=False).resolve("localhost", 443)
    assert await PublicResolver(allow_private=True).resolve("localhost", 443)
    async with Sender(allow_private=False, concurrency=4) as sender:
        device = Device("v", "d", "https://localhost:1/push", p256dh(), b64url(bytes(16)), 0, 0)
        sent = await sender.send(shop(), device, Message(b"{}", 60, "normal", ""), 0)
        assert sent.unsafe and not sent.delivered and "non-public" in sent.error
        literal = Device("v", "d", "https://10.0.0.1/push", p256dh(), b64url(bytes(16)), 0, 0)
        assert (await sender.send(shop(), literal, Message(b"{}", 60, "normal", ""), 0)).unsafe


async def test_a_stored_endpoint_that_turned_private_is_dead_lettered_and_never_reached(
    api: httpx.AsyncClient, receiver: Receiver, redis: aioredis.Redis, push_settings: Settings
) -> None:
    visitor = new_id()
    browser = receiver.device()
    rebound = browser.endpoint.replace("http://127.0.0.1", "https://localhost")
    keys = browser.subscription()["keys"]
    await PushSubscriptions(redis, 3600).add("shop", visitor, PushSubscription(rebound, PushKeys(**keys)), 0)
    queued = await send_push(api, visitor=visitor, title="Into the network")
    async with Sender(allow_private=False, concurrency=4) as sender:
        worker = Worker(push_settings, load_sites(PUSH_SITES), redis, sender, consumer="strict")
        await worker.queue.ensure_group("shop")
        await drain(worker)
    assert receiver.requests == {}
    assert (await push_stats(api, queued["push"]))["failed"] == {"unsafe_endpoint": 1}
    [dead] = (await api.get("/v1/admin/sites/shop/push/dead", headers=AUTH)).json()["dead"]
    assert "non-public" in dead["reason"]
