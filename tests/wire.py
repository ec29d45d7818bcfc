"""Building event batches the way the tag sends them."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx

SHOP_ORIGIN = "https://shop.test"


def new_id() -> str:
    return secrets.token_hex(16)


def event(event_type: str, url: str = "https://shop.test/", ref: str = "", **props: Any) -> dict[str, Any]:
    return {"type": event_type, "ts": 1_763_900_000_000, "url": url, "ref": ref, "props": props}


def batch(
    *events: dict[str, Any], visitor: str, session: str | None = None, site: str = "shop", batch_id: str = ""
) -> dict[str, Any]:
    return {
        "site": site,
        "visitor": visitor,
        "session": session or visitor,
        "batch": batch_id or new_id(),
        "events": list(events),
    }


async def post(
    client: httpx.AsyncClient, body: dict[str, Any] | bytes, origin: str | None = SHOP_ORIGIN, **headers: str
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {"content-type": "text/plain", **({"origin": origin} if origin else {}), **headers}
    return await client.post("/v1/events", content=content, headers=all_headers)
