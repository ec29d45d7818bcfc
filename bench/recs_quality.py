"""Quality of recommendations on a synthetic shop with known taste: hit-rate@10 and NDCG@10 per strategy.

The shop: CATEGORIES categories of ITEMS_PER_CATEGORY items, Zipf-popular within their category; each item
has one complement in the next category that is truly bought with it (a mug and its coffee). The
visitors: each prefers one or two categories (hidden), and over two weeks has a few sessions, mostly in a
preferred category: product pages, and now and then an order of a viewed item, often with its
complement. Every session goes through the real event path (`Runtime.ingest`) into a redis-server of its
own, interleaved in time as real traffic is, except each visitor's last order: of that session only
the product pages of items not in the order are replayed. Then each strategy recommends 10 items to each
such visitor, on the page of their last replayed product, and is scored against the held-out order:
hit-rate@10 (any ordered item in the list) and NDCG@10. "alone" runs a strategy without its fallback
chain; "served" is what a slot shows (with the chain). Popularity is the baseline.

    .venv/bin/python bench/recs_quality.py [--visitors 1500] [--seed 7]

Prints the table and writes bench/RECS_QUALITY.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import random
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from local_servers import redis_server

from server import protocol as p
from server.catalog_import import load
from server.engine import BUILTIN_RULES_DIR
from server.ingest import Runtime, build_runtime
from server.recs import Context
from server.recs_spec import STRATEGIES, Strategy
from server.settings import Settings
from server.sites import Site
from server.state import connect

HERE = Path(__file__).resolve().parent
RESULTS_FILE = HERE / "RECS_QUALITY.md"
SITE = Site(key="quality", name="Quality", origins=("http://shop.quality",))
CATEGORIES, ITEMS_PER_CATEGORY = 12, 40
DAYS = 14
K = 10


@dataclass
class Session:
    visitor: str
    start: float
    views: list[str]
    order: list[str] = field(default_factory=list)


@dataclass
class Shop:
    rng: random.Random
    items: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.items = [f"c{c}-i{i}" for c in range(CATEGORIES) for i in range(ITEMS_PER_CATEGORY)]
        self.weights = [1 / (i + 1) ** 1.05 for i in range(ITEMS_PER_CATEGORY)]

    def in_category(self, category: int) -> list[str]:
        return self.items[category * ITEMS_PER_CATEGORY : (category + 1) * ITEMS_PER_CATEGORY]

    def complement(self, item: str) -> str:
        category, index = (int(part[1:]) for part in item.split("-"))
        # A fixed, scrambled partner in the next category: not merely "the equally popular one".
        return f"c{(category + 1) % CATEGORIES}-i{(index * 7 + 3) % ITEMS_PER_CATEGORY}"

    def rows(self) -> list[p.CatalogRow]:
        return [
            p.CatalogRow(
                id=item,
                title=item,
                price=5 + (zlib.crc32(item.encode()) % 5000) / 100,
                url=f"http://shop.quality/p/{item}",
                category=f"cat-{item.split('-')[0]}",
                brand=f"brand-{int(item.split('-i')[1]) % 5}",
            )
            for item in self.items
        ]

    def visitor_sessions(self, visitor: str) -> list[Session]:
        rng = self.rng
        liked = rng.sample(range(CATEGORIES), rng.choice((1, 1, 2)))
        sessions = []
        for start in sorted(rng.uniform(0, DAYS * 86400) for _ in range(rng.randint(3, 6))):
            category = rng.choice(liked) if rng.random() < 0.85 else rng.randrange(CATEGORIES)
            picks = rng.choices(self.in_category(category), self.weights, k=rng.randint(2, 5))
            session = Session(visitor, start, list(dict.fromkeys(picks)))
            if rng.random() < 0.45:
                anchor = rng.choice(session.views)
                session.order = [anchor]
                if rng.random() < 0.6:
                    session.order.append(self.complement(anchor))
                    session.views.append(self.complement(anchor))
            sessions.append(session)
        return sessions


def page(item: str) -> list[p.Event]:
    url = f"http://shop.quality/p/{item}"
    category = f"cat-{item.split('-')[0]}"
    view = p.ProductView(url=url, props=p.ProductProps(id=item, name=item, price=10, category=category))
    return [p.PageView(url=url, props=p.PageProps("product")), view]


class Replay:
    def __init__(self, runtime: Runtime, clock: list[float]) -> None:
        self.runtime, self.clock, self.batches = runtime, clock, 0

    async def send(self, visitor: str, session: str, at: float, events: list[p.Event]) -> None:
        self.clock[0] = at
        self.batches += 1
        batch = p.EventBatch(SITE.key, visitor, session, events, f"b{self.batches:015d}")
        await self.runtime.ingest(batch, None)

    async def session(self, session: Session, held_out: bool) -> None:
        sid = f"{session.visitor[:16]}{int(session.start):016d}"
        at = session.start
        for item in session.views:
            if held_out and item in session.order:
                continue
            await self.send(session.visitor, sid, at, page(item))
            at += 60
        if session.order and not held_out:
            lines = [
                p.CartLineProps(item, price=10, category=f"cat-{item.split('-')[0]}")
                for item in session.order
            ]
            carts: list[p.Event] = [p.CartAdd(props=line) for line in lines]
            purchase = p.Purchase(props=p.PurchaseProps(f"o-{sid}", 10.0 * len(lines), lines))
            await self.send(session.visitor, sid, at, [*carts, purchase])


def ndcg(ranked: list[str], targets: set[str]) -> float:
    dcg = sum(1 / math.log2(rank + 2) for rank, item in enumerate(ranked[:K]) if item in targets)
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(len(targets), K)))
    return dcg / ideal


async def run(args: argparse.Namespace, tmp: Path) -> list[str]:
    rng = random.Random(args.seed)
    shop = Shop(rng)
    visitors = {f"{n:032x}": shop.visitor_sessions(f"{n:032x}") for n in range(args.visitors)}
    held: dict[str, Session] = {}
    for visitor, sessions in visitors.items():
        ordered = [session for session in sessions if session.order]
        if ordered:
            held[visitor] = ordered[-1]
    origin = time.time() - DAYS * 86400
    clock = [origin]
    with redis_server(tmp, "1") as redis:
        runtime = build_runtime(
            Settings(redis_url=redis.url),
            {SITE.key: SITE},
            connect(redis.url),
            [BUILTIN_RULES_DIR],
            clock=lambda: origin + clock[0],
        )
        await load(runtime.recs.catalog, SITE.key, SITE.currency, shop.rows())
        replay = Replay(runtime, clock)
        every = sorted((s for sessions in visitors.values() for s in sessions), key=lambda s: s.start)
        started = time.perf_counter()
        for session in every:
            await replay.session(session, held_out=held.get(session.visitor) is session)
        await runtime.behind.flush()  # what the replay taught, written behind it
        replay_s = time.perf_counter() - started
        clock[0] = DAYS * 86400
        now_ms = int((origin + clock[0]) * 1000)
        contexts = {v: Context.of(await runtime.store.load(SITE.key, v)) for v in held}
        variants = [(name, False) for name in STRATEGIES] + [(name, True) for name in STRATEGIES]
        scores: dict[tuple[str, bool], tuple[float, float, float]] = {}
        for name, served in variants:
            hits, gains, filled = 0, 0.0, 0
            for visitor, session in held.items():
                products = await runtime.recs.recommend(
                    SITE.key, contexts[visitor], Strategy(name, fallback=served), K, now_ms
                )
                ranked = [product.id for product in products]
                targets = set(session.order)
                hits += bool(targets & set(ranked))
                gains += ndcg(ranked, targets)
                filled += bool(ranked)
            n = len(held)
            scores[(name, served)] = (hits / n, gains / n, filled / n)
        # The pairs truly bought together: on the page of the first item of a held-out order of two, is
        # the second (its complement) in the list?
        pairs = [(v, s.order[0], s.order[1]) for v, s in held.items() if len(s.order) == 2]
        complements: dict[str, float] = {}
        for name in (
            "popular",
            "category_popular",
            "viewed_together",
            "bought_together",
            "similar",
            "for_you",
        ):
            found = 0
            for visitor, anchor, complement in pairs:
                ctx = contexts[visitor]
                on_page = Context(anchor, ctx.cart, ctx.recent, ctx.bought, ctx.category)
                products = await runtime.recs.recommend(SITE.key, on_page, Strategy(name), K, now_ms)
                found += complement in {product.id for product in products}
            complements[name] = found / len(pairs)
        await runtime.store.redis.aclose()
    base_hit, base_ndcg, _ = scores[("popular", False)]
    lines = [
        f"{len(visitors):,} visitors, {sum(len(s) for s in visitors.values()):,} sessions "
        f"({replay.batches:,} batches through the event path in {replay_s:.0f} s), "
        f"{len(held):,} held-out orders ({sum(len(s.order) for s in held.values()) / len(held):.2f} items "
        f"each); {len(shop.items)} products in {CATEGORIES} categories.",
        "",
        "| strategy | list | hit-rate@10 | NDCG@10 | hit-rate / popular's | NDCG / popular's | not empty |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for (name, served), (hit, gain, filled) in scores.items():
        variant = "served (with fallback)" if served else "alone"
        hit_ratio = f"{hit / base_hit:.2f}" if base_hit else "—"
        ndcg_ratio = f"{gain / base_ndcg:.2f}" if base_ndcg else "—"
        lines.append(
            f"| `{name}` | {variant} | {hit:.3f} | {gain:.3f} | {hit_ratio} | {ndcg_ratio} | {filled:.0%} |"
        )
    lines += [
        "",
        f"Complements: on the page of the first item of each held-out order of two ({len(pairs):,}), the "
        "share of served lists (with fallback) that hold the second item, truly bought with the first:",
        "",
        "| strategy | complement in top 10 | / popular's |",
        "|---|---:|---:|",
    ]
    base = complements["popular"]
    for name, share in complements.items():
        lines.append(
            f"| `{name}` | {share:.3f} | {share / base:.2f} |" if base else f"| `{name}` | {share:.3f} | — |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help=f"do not overwrite {RESULTS_FILE.name}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="storetag-recs-quality-") as tmp:
        lines = asyncio.run(run(args, Path(tmp)))
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join([".venv/bin/python", "bench/recs_quality.py", *sys.argv[1:]])
    text = "\n".join(
        [
            "# Recommendations: quality on a synthetic shop",
            "",
            *lines,
            "",
            f"- Date: {now}; command: `{command}`; seed {args.seed}.",
            "- Method: see the docstring of bench/recs_quality.py. Each visitor's held-out order is scored "
            "against the 10 items a strategy gives them on the page of their last replayed product view.",
            "",
        ]
    )
    print(text)
    if not args.no_write:
        RESULTS_FILE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
