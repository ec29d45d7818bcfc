"""Push fixtures: the local push service (receiver), the app on the push test sites, and a worker in this
process with a clock the test moves."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import redis.asyncio as aioredis

from server.engine import BUILTIN_RULES_DIR, load_rules
from server.push_sender import Sender
from server.settings import Settings
from server.sites import Site, load_sites
from server.worker import Worker
from tests.push.receiver import Device, Receiver
from tests.wire import SHOP_ORIGIN, batch, event, post

PUSH_SITES = Path(__file__).parent / "sites.toml"
SEGMENTS = load_rules([BUILTIN_RULES_DIR])[1]
TOKEN = "push-admin-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def shop() -> Site:
    return load_sites(PUSH_SITES)["shop"]


class Clock:
    """Real time, moved forward by the test."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def push_settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(
        settings,
        sites_file=PUSH_SITES,
        admin_token_sha256=hashlib.sha256(TOKEN.encode()).hexdigest(),
        public_url="https://tags.test",
        push_allow_private=True,
        push_retry_base_ms=1000,
        push_max_attempts=3,
    )


@pytest.fixture
def api(make_client: Callable[..., httpx.AsyncClient], push_settings: Settings) -> httpx.AsyncClient:
    return make_client(**{field: getattr(push_settings, field) for field in push_settings.__struct_fields__})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver(shop().vapid_public_key)
    await found.start()
    yield found
    await found.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def worker(push_settings: Settings, redis: aioredis.Redis, clock: Clock) -> AsyncIterator[Worker]:
    async with Sender(push_settings.push_allow_private, push_settings.push_concurrency) as sender:
        sites = load_sites(PUSH_SITES)
        found = Worker(push_settings, sites, redis, sender, clock=clock, consumer="test", segments=SEGMENTS)
        for site in found.sites:
            await found.queue.ensure_group(site.key)
        yield found


async def drain(worker: Worker) -> None:
    """Runs the worker until it finds nothing due and nothing new."""
    while await worker.run_once():
        pass


async def subscribe(
    api: httpx.AsyncClient, visitor: str, device: Device, site: str = "shop"
) -> httpx.Response:
    body = {"site": site, "visitor": visitor, "subscription": device.subscription()}
    return await api.post(
        "/v1/push/subscriptions",
        content=json.dumps(body).encode(),
        headers={"content-type": "text/plain", "origin": SHOP_ORIGIN},
    )


async def track(api: httpx.AsyncClient, visitor: str, event_type: str, **props: Any) -> None:
    answer = await post(api, batch(event(event_type, **props), visitor=visitor))
    assert answer.status_code == 200, answer.text


async def identify(api: httpx.AsyncClient, visitor: str, customer: str) -> None:
    signature = hmac.new(b"test-secret", customer.encode(), hashlib.sha256).hexdigest()
    await track(api, visitor, "identify", customer_id=customer, signature=signature)


async def send_push(api: httpx.AsyncClient, **order: Any) -> dict[str, Any]:
    answer = await api.post("/v1/admin/sites/shop/push", json=order, headers=AUTH)
    assert answer.status_code == 202, answer.text
    queued: dict[str, Any] = answer.json()
    return queued


async def push_stats(api: httpx.AsyncClient, push: str) -> dict[str, Any]:
    answer = await api.get(f"/v1/admin/sites/shop/push/{push}/stats", headers=AUTH)
    assert answer.status_code == 200, answer.text
    counts: dict[str, Any] = answer.json()["counts"]
    return counts
