"""Realistic event batches for POST /v1/events, in Python: the same shop as bench/events.lua.

events.lua feeds wrk; this module feeds the Python load generators (bench/fixed_rate.py) and the memory
benchmark (bench/visitor_memory.py). The catalogue, page types and event mix are the same in both.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from typing import Any

import msgspec

PRODUCTS = 500
CATEGORIES = 20
PAGE_TYPES = ("home", "product", "category", "cart", "search", "content")
SHOP = "http://shop.bench"
# Roughly a shop's mix: mostly page and product views, fewer category views, a few cart adds.
KINDS = ("page_view",) * 3 + ("product_view",) * 3 + ("category_view",) * 2 + ("cart_add",)

Event = dict[str, Any]
encoder = msgspec.json.Encoder()


def product(rng: random.Random, n: int | None = None) -> tuple[int, float, int]:
    n = rng.randint(1, PRODUCTS) if n is None else n
    return n, round(5 + (n * 7919 % 20000) / 100, 2), n % CATEGORIES + 1


def event(kind: str, ts: int, ref: str, props: dict[str, Any], path: str) -> Event:
    return {"type": kind, "ts": ts, "url": SHOP + path, "ref": ref, "props": props}


def page_view(rng: random.Random, ts: int, ref: str, page_type: str | None = None, path: str = "") -> Event:
    page_type = page_type or rng.choice(PAGE_TYPES)
    props = {"page_type": page_type, "title": f"Bench shop - {page_type}"}
    return event("page_view", ts, ref, props, path or f"/{page_type}")


def product_view(rng: random.Random, ts: int, ref: str, n: int | None = None) -> Event:
    n, price, cat = product(rng, n)
    props = {"id": f"p{n}", "name": f"Product {n}", "price": price, "category": f"cat-{cat}"}
    return event("product_view", ts, ref, props, f"/p/{n}")


def category_view(rng: random.Random, ts: int, ref: str, cat: int | None = None) -> Event:
    cat = rng.randint(1, CATEGORIES) if cat is None else cat
    return event("category_view", ts, ref, {"id": f"cat-{cat}"}, f"/c/{cat}")


def cart_add(rng: random.Random, ts: int, ref: str, n: int | None = None, qty: int = 0) -> Event:
    n, price, cat = product(rng, n)
    qty = qty or rng.randint(1, 3)
    props = {"id": f"p{n}", "qty": qty, "price": price, "name": f"Product {n}", "category": f"cat-{cat}"}
    return event("cart_add", ts, ref, props, f"/p/{n}")


def action_event(kind: str, action: str, ts: int, url: str) -> Event:
    return {"type": kind, "ts": ts, "url": url, "ref": "", "props": {"action": action}}


MAKERS: dict[str, Callable[[random.Random, int, str], Event]] = {
    "page_view": page_view,
    "product_view": product_view,
    "category_view": category_view,
}


def batch(site: str, visitor: str, session: str, events: list[Event]) -> dict[str, Any]:
    return {
        "site": site,
        "visitor": visitor,
        "session": session,
        "batch": secrets.token_hex(16),
        "events": events,
    }


class Traffic:
    """Batches of 1-4 events from a pool of visitors whose sessions now and then start afresh; one opening
    with a page view says its page holds no action armed (events.lua)."""

    def __init__(self, site: str, pool: int = 5000, seed: int | None = None) -> None:
        self.site = site
        self.rng = random.Random(seed)
        self.visitors = [secrets.token_hex(16) for _ in range(pool)]
        self.sessions = [secrets.token_hex(16) for _ in range(pool)]

    def next_body(self) -> bytes:
        rng, i = self.rng, self.rng.randrange(len(self.visitors))
        if rng.randint(1, 50) == 1:
            self.sessions[i] = secrets.token_hex(16)
        now, count, ref, events = int(time.time() * 1000), rng.randint(1, 4), "", []
        for k in range(count):
            kind = rng.choice(KINDS)
            ts = now - (count - 1 - k) * 1500
            made = cart_add(rng, ts, ref) if kind == "cart_add" else MAKERS[kind](rng, ts, ref)
            events.append(made)
            ref = made["url"]
        body = batch(self.site, self.visitors[i], self.sessions[i], events)
        if events[0]["type"] == "page_view":
            # A batch opening a page holds nothing armed yet, and the tag says so.
            body["armed"] = []
        return encoder.encode(body)
