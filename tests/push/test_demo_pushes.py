"""`make demo` sends web pushes: the demo runs on the embedded store, which lives inside its process, so the
demo process runs the push worker too. A push sent through the admin API reaches a subscribed device."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from server.settings import DEFAULT_SITES_FILE
from server.sites import load_sites
from tests.browser.conftest import eventually
from tests.conftest import LiveServer, free_port
from tests.push.receiver import Receiver
from tests.wire import new_id

TOKEN = "demo-push-token"


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, LiveServer]]:
    """`storetag demo` as `make demo` runs it (no REDIS_URL), with a local push service allowed."""
    shop_port, api_port = free_port(), free_port()
    shop_origin = f"http://127.0.0.1:{shop_port}"
    env = {
        "STORETAG_ADMIN_TOKEN": TOKEN,
        "STORETAG_PUSH_ALLOW_PRIVATE": "1",
        "STORETAG_PUSH_POLL_MS": "50",
        "STORETAG_ALLOWED_ORIGINS": shop_origin,
    }
    monkeypatch.delenv("REDIS_URL", raising=False)
    api = LiveServer(["demo", "--port", str(shop_port), "--api-port", str(api_port)], env, api_port)
    try:
        yield shop_origin, api
    finally:
        api.stop()


async def test_a_push_sent_in_the_demo_reaches_a_subscribed_device(demo: tuple[str, LiveServer]) -> None:
    shop_origin, api = demo
    receiver = Receiver(load_sites(DEFAULT_SITES_FILE)["demo"].vapid_public_key)
    await receiver.start()
    try:
        device, visitor = receiver.device(), new_id()
        async with httpx.AsyncClient(base_url=api.url) as client:
            body = {"site": "demo", "visitor": visitor, "subscription": device.subscription()}
            subscribed = await client.post(
                "/v1/push/subscriptions",
                content=json.dumps(body),
                headers={"content-type": "text/plain", "origin": shop_origin},
            )
            assert subscribed.status_code == 201, subscribed.text
            order = {"visitor": visitor, "title": "Back in stock", "url": f"{shop_origin}/p/mug-classic"}
            sent = await client.post(
                "/v1/admin/sites/demo/push", json=order, headers={"authorization": f"Bearer {TOKEN}"}
            )
            assert sent.status_code == 202, sent.text

        async def titles() -> list[str]:
            return [got.notification.title for got in receiver.for_device(device)]

        await eventually(titles, ["Back in stock"], within_s=10)
        assert receiver.refused == []
    finally:
        await receiver.stop()
