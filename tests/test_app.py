"""Health, readiness, CORS and the embedded store."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.conftest import free_port
from tests.wire import batch, event, new_id, post


async def test_healthz_and_readyz_answer_when_redis_is_up(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"ok": True}
    assert (await client.get("/readyz")).json() == {"ok": True}


async def test_readyz_fails_and_events_ask_for_a_retry_when_redis_is_down(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    client = make_client(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    ready = await client.get("/readyz")
    assert ready.status_code == 503 and "redis unavailable" in ready.json()["error"]
    events = await post(client, batch(event("page_view"), visitor=new_id()))
    assert events.status_code == 503
    assert events.headers["retry-after"] == "5"


async def test_answers_are_readable_by_the_shops_origin_only_after_its_check(
    client: httpx.AsyncClient,
) -> None:
    response = await post(client, batch(event("page_view"), visitor=new_id()))
    assert response.headers["access-control-allow-origin"] == "https://shop.test"
    assert response.headers["vary"] == "Origin"


async def test_a_json_preflight_is_allowed_for_site_origins_only(client: httpx.AsyncClient) -> None:
    headers = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
    allowed = await client.options("/v1/events", headers={**headers, "origin": "https://shop.test"})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "https://shop.test"
    refused = await client.options("/v1/events", headers={**headers, "origin": "https://evil.test"})
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers


async def test_extra_allowed_origins_from_settings_apply_to_every_site(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    client = make_client(allowed_origins=("http://localhost:3000",))
    body = batch(event("page_view"), visitor=new_id())
    assert (await post(client, body, origin="http://localhost:3000")).status_code == 200


async def test_without_redis_url_the_embedded_store_serves_and_says_so_loudly(
    make_client: Callable[..., httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(redis_url=None)
    assert "EMBEDDED in-process store" in caplog.text
    visitor = new_id()
    await post(client, batch(event("page_view"), visitor=visitor))
    [welcome] = (await post(client, batch(event("page_view"), visitor=visitor))).json()["actions"]
    assert welcome["id"] == "welcome"
    assert (await client.get("/readyz")).status_code == 200
