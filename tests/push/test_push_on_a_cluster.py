"""Web push on a real 3-master Redis Cluster: `storetag serve` stores subscriptions and links customers,
`storetag worker` reads the site's stream, moves a retry through the schedule with its Lua script, and
delivers; nothing crosses slots."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.conftest import LiveServer, free_port
from tests.push.conftest import PUSH_SITES, TOKEN, shop
from tests.push.receiver import Answer, Receiver
from tests.push.test_worker_process import WorkerProcess, until
from tests.test_cluster import cluster_ports  # noqa: F401 - the cluster fixture
from tests.wire import SHOP_ORIGIN, batch, event, new_id

AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def cluster_url(cluster_ports: list[int]) -> str:  # noqa: F811
    return f"redis+cluster://127.0.0.1:{cluster_ports[0]}"


@pytest.fixture
def api_on_cluster(cluster_url: str) -> Iterator[LiveServer]:
    port = free_port()
    env = {
        "REDIS_URL": cluster_url,
        "STORETAG_SITES": str(PUSH_SITES),
        "STORETAG_ADMIN_TOKEN": TOKEN,
        "STORETAG_PUSH_ALLOW_PRIVATE": "1",
    }
    live = LiveServer(["serve", "--port", str(port)], env, port)
    yield live
    live.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver(shop().vapid_public_key)
    await found.start()
    yield found
    await found.stop()


async def test_pushes_are_stored_scheduled_retried_and_delivered_on_a_cluster(
    api_on_cluster: LiveServer, cluster_url: str, receiver: Receiver
) -> None:
    async with httpx.AsyncClient(base_url=api_on_cluster.url, timeout=10) as http:
        visitors = [new_id() for _ in range(6)]
        devices = [receiver.device() for _ in visitors]
        receiver.answer(devices[0], Answer(429, retry_after="1"))
        for visitor, device in zip(visitors, devices, strict=True):
            body = {"site": "shop", "visitor": visitor, "subscription": device.subscription()}
            stored = await http.post(
                "/v1/push/subscriptions",
                content=json.dumps(body).encode(),
                headers={"content-type": "text/plain", "origin": SHOP_ORIGIN},
            )
            assert stored.status_code == 201, stored.text
        identify = event("identify", customer_id="cust-1", signature=_signature("cust-1"))
        for visitor in visitors[:2]:
            answer = await http.post(
                "/v1/events",
                json=batch(identify, visitor=visitor),
                headers={"origin": SHOP_ORIGIN, "content-type": "text/plain"},
            )
            assert answer.status_code == 200
        to_all = (
            await http.post("/v1/admin/sites/shop/push", json={"all": True, "title": "All"}, headers=AUTH)
        ).json()
        customer = (
            await http.post(
                "/v1/admin/sites/shop/push", json={"customer": "cust-1", "title": "You"}, headers=AUTH
            )
        ).json()
        worker = WorkerProcess("cluster", cluster_url)
        try:
            await until(lambda: len(receiver.received) == 8, within_s=30)
            await asyncio.sleep(0.3)  # nothing more comes
            assert len(receiver.received) == 8 and receiver.refused == []
            assert receiver.requests["d0"] == 3  # a 429, then its retry from the schedule, and "You"
            stats = (await http.get(f"/v1/admin/sites/shop/push/{to_all['push']}/stats", headers=AUTH)).json()
            assert (stats["counts"]["visitors"], stats["counts"]["delivered"]) == (6, 6)
            stats = (
                await http.get(f"/v1/admin/sites/shop/push/{customer['push']}/stats", headers=AUTH)
            ).json()
            assert (stats["counts"]["visitors"], stats["counts"]["delivered"]) == (2, 2)
            admin = (await http.get("/v1/admin/sites/shop/push/stats", headers=AUTH)).json()["rules"][""]
            assert admin["retried"] == 1  # d0's 429, whichever push met it
        finally:
            assert worker.stop() == 0


def _signature(customer: str) -> str:
    return hmac.new(b"test-secret", customer.encode(), hashlib.sha256).hexdigest()
