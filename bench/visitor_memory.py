"""Redis memory per active visitor after a realistic session, with the demo rules.

Thousands of visitors each go through one session (bench/visitor_sessions.py: a dozen page and product
views, cart adds, actions shown and closed) on Storetag's real event path (server.ingest.build_runtime, in
this process for speed) against a real redis-server of its own. Then: INFO memory used_memory after minus
before, divided by the visitors (everything the server wrote, Redis's own per-key overhead and the site-wide
keys included), and MEMORY USAGE of each sampled visitor's own keys. Every visitor key must carry a TTL.

    .venv/bin/python bench/visitor_memory.py [--visitors 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from local_servers import redis_server
from report import Goal, Section, markdown_table
from targets import ORIGIN, SITE
from visitor_sessions import Session

from server.engine import BUILTIN_RULES_DIR
from server.ingest import build_runtime
from server.settings import Settings
from server.sites import Site
from server.state import visitor_key
from server.visitor import state_decoder, state_encoder

GOAL_BYTES = 2 * 1024
CONCURRENT = 64
SAMPLED = 500
WARMUP_MIN = 200
REDIS_CPU = "1"
BENCH_SITE = Site(
    key=SITE,
    name="Bench",
    origins=(ORIGIN,),
    secret="bench-secret-for-signed-codes",
    settings={"free_shipping_over": 50, "rescue_carts_over": 30},
)
# st:{SITE:VISITOR}:part is the visitor's; st:{SITE}:code:CODE a code record (one per issued code).
VISITOR_KEY = re.compile(r"^st:\{[^:}]+:([^}]+)\}:(.+)$")
SITE_KEY = re.compile(r"^st:\{[^}]+\}:([a-z_]+)")


@dataclass
class Measured:
    visitors: int
    seconds: float
    delta: int  # used_memory after - before
    kinds: Counter[str]  # keys by kind
    per_visitor: list[int]  # MEMORY USAGE of each sampled visitor's keys, sorted
    no_ttl: int
    site_bytes: int
    parts: dict[str, int]  # median msgpack bytes of each part of a visitor's state value
    answered: int
    shown: int
    batches: int


async def used_memory(redis: aioredis.Redis) -> int:
    info = await redis.info("memory")
    return int(info["used_memory"])


async def drive(redis_url: str, visitors: int, seed: int) -> tuple[list[Session], float]:
    redis = aioredis.Redis.from_url(redis_url)
    runtime = build_runtime(Settings(redis_url=redis_url), {SITE: BENCH_SITE}, redis, [BUILTIN_RULES_DIR])
    rng, gate = random.Random(seed), asyncio.Semaphore(CONCURRENT)
    sessions = [Session(runtime, SITE, ORIGIN, random.Random(rng.random())) for _ in range(visitors)]

    async def one(session: Session) -> None:
        async with gate:
            await session.run(int(time.time() * 1000))

    started = time.monotonic()
    try:
        await asyncio.gather(*(one(s) for s in sessions))
    finally:
        await redis.aclose()
    return sessions, time.monotonic() - started


async def inventory(redis: aioredis.Redis, sample: set[str]) -> tuple[Counter[str], dict[str, int], int]:
    """Key counts by kind; MEMORY USAGE of the sampled visitors' keys per visitor; keys without a TTL."""
    kinds: Counter[str] = Counter()
    per_visitor: dict[str, int] = dict.fromkeys(sample, 0)
    no_ttl = 0
    async for raw in redis.scan_iter(count=1000):
        key = raw.decode()
        if match := VISITOR_KEY.match(key):
            kinds[f"visitor: {match[2]}"] += 1
            if match[1] in per_visitor:
                per_visitor[match[1]] += int(await redis.memory_usage(key, samples=0) or 0)
                no_ttl += await redis.ttl(key) == -1
        else:
            match = SITE_KEY.match(key)
            kinds[f"site: {match[1] if match else key}"] += 1
    return kinds, per_visitor, no_ttl


async def state_parts(redis: aioredis.Redis, visitors: set[str]) -> dict[str, int]:
    """Median bytes of each part of the state value (msgpack, as stored): where a visitor's bytes go."""
    sizes: dict[str, list[int]] = {}
    for visitor in visitors:
        raw = await redis.get(visitor_key(SITE, visitor, "state"))
        if not raw:
            continue
        state = state_decoder.decode(raw)
        parts = {"whole value": raw, **{name: getattr(state, name) for name in state.__struct_fields__}}
        parts |= {
            f"session.{name}": getattr(state.session, name) for name in ("products", "categories", "cart")
        }
        for name, value in parts.items():
            size = len(value) if isinstance(value, bytes) else len(state_encoder.encode(value))
            sizes.setdefault(name, []).append(size)
    return {name: int(statistics.median(values)) for name, values in sizes.items()}


async def measure(redis_url: str, visitors: int) -> Measured:
    admin = aioredis.Redis.from_url(redis_url)
    try:
        await admin.flushall()
        # Warm-up visitors first, not counted: Redis's fixed costs (the site's stats hash, the script cache,
        # the first allocator pages) would otherwise be charged to the visitors measured.
        await drive(redis_url, max(WARMUP_MIN, visitors // 10), seed=5)
        before = await used_memory(admin)
        sessions, seconds = await drive(redis_url, visitors, seed=6)
        after = await used_memory(admin)
        sample = {s.visitor for s in random.Random(6).sample(sessions, min(SAMPLED, len(sessions)))}
        kinds, per_visitor, no_ttl = await inventory(admin, sample)
        parts = await state_parts(admin, sample)
        site_bytes = 0
        async for raw in admin.scan_iter(match=f"st:{{{SITE}}}:*", count=1000):
            site_bytes += int(await admin.memory_usage(raw, samples=0) or 0)
    finally:
        await admin.aclose()
    return Measured(
        visitors=visitors,
        seconds=seconds,
        delta=after - before,
        kinds=kinds,
        per_visitor=sorted(per_visitor.values()),
        no_ttl=no_ttl,
        site_bytes=site_bytes,
        parts=parts,
        answered=sum(s.answered for s in sessions),
        shown=sum(s.shown for s in sessions),
        batches=sum(s.batches for s in sessions),
    )


def section(m: Measured) -> Section:
    visitors, per_visitor = m.visitors, m.per_visitor
    per_active = m.delta / visitors
    median = statistics.median(per_visitor) if per_visitor else 0
    p90 = per_visitor[int(len(per_visitor) * 0.9)] if per_visitor else 0
    rows = [
        [
            f"used_memory after - before the {visitors:,} visitors",
            f"{m.delta:,} B",
            f"**{per_active:,.0f} B**",
        ],
        [
            f"MEMORY USAGE of a visitor's own keys ({len(per_visitor)} sampled)",
            "",
            f"median {median:,.0f} B, p90 {p90:,} B, max {max(per_visitor, default=0):,} B",
        ],
        ["MEMORY USAGE of site-wide keys (code records, stats)", f"{m.site_bytes:,} B", ""],
    ]
    table = markdown_table(["measure", "total", "per visitor"], rows, "lrr")
    parts = markdown_table(
        ["part of the state value", "bytes (median)"], [[k, f"{v:,}"] for k, v in m.parts.items()]
    )
    keys = ", ".join(f"{kind}: {n:,}" for kind, n in sorted(m.kinds.items()))
    return Section(
        title="Redis memory per active visitor",
        command=f".venv/bin/python bench/visitor_memory.py --visitors {visitors}",
        tables=[
            table,
            "Where a visitor's state value goes (msgpack, as stored; sampled visitors):\n\n" + parts,
        ],
        goals=[
            Goal(
                "≤ 2 KB per active visitor",
                f"{per_active:,.0f} B (used_memory delta / visitors)",
                per_active <= GOAL_BYTES,
            )
        ],
        notes=[
            f"{visitors:,} visitors, one session each, {m.batches:,} batches in {m.seconds:.0f} s, after "
            f"{max(WARMUP_MIN, visitors // 10):,} uncounted warm-up visitors (Redis's fixed costs), through "
            "`server.ingest.build_runtime` with the demo rules, in-process, against a redis-server of its "
            f"own (no persistence, flushed first), {CONCURRENT} sessions at a time. A session: landing page "
            "(a third with UTM tags), 10-14 page views (category and product pages, some products seen "
            "again), 1-3 cart adds each followed by the cart page, actions shown and closed as the tag would "
            f"({m.answered:,} actions answered, {m.shown:,} shown).",
            f"Keys left: {keys}. Visitor keys without a TTL among the sampled: {m.no_ttl}.",
            "used_memory delta counts everything the measured sessions added (values, Redis's per-key and "
            "expiry overhead, their code records and stats) and is the goal's figure; MEMORY USAGE "
            "(SAMPLES 0) is per key: the sampled visitors' own keys, and all site-wide keys (warm-up's too).",
        ],
    )


def run(args: argparse.Namespace) -> Section:
    with (
        tempfile.TemporaryDirectory(prefix="storetag-memory-") as tmp,
        redis_server(Path(tmp), REDIS_CPU) as redis,
    ):
        measured = asyncio.run(measure(redis.url, args.visitors))
    return section(measured)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("visitor memory")
    group.add_argument("--visitors", type=int, help="simulated visitors (default 2,000; quick 500)")


def apply_defaults(args: argparse.Namespace) -> None:
    args.visitors = args.visitors or (500 if args.quick else 2000)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    add_arguments(parser)
    arguments = parser.parse_args()
    apply_defaults(arguments)
    print(run(arguments).markdown())
