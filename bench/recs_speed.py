"""Speed of recommendations: the server time of a slot, and the CPU learning from events adds to each batch.

1. Slots: 10,000 products and 1,000,000 co-occurrence updates (viewed and bought together, through the real
   write path) are loaded into a redis-server of its own, with 2,000 visitors whose history came through
   the real event path. Then, one call at a time, the server time of a top-10 list of each strategy
   (`Recommender.recommend`) and of whole slots (`Runtime.recs_for`: the visitor's state, the rules, the
   strategy with its fallback chain, the template: all that GET /v1/recs does but HTTP), p50 and p99 in
   rounds that take turns (the median round's, and the worst), and the CPU µs redis-server spends per call
   (the one resource every server process shares). The process keeps the lists it read as a server does
   (STORETAG_RECS_CACHE_MS, 10 s): a warm process.
   Goal: p99 ≤ 2 ms for a slot.
2. Learning: 11,520 batches shaped like bench/events.lua's (a third of the events product views, some cart
   adds) through `Runtime.ingest` (no HTTP), 32 at a time, alternating in chunks of 480 between no rules
   with recommendations off, the same with them on, the demo rules with them on, and the same with
   learning in workers; each chunk's writes behind flushed at its end and charged to it. Learning's cost:
   the CPU counted inside learning (`Recommender.observe`, and the flush, which also carries the rules'
   stats: a bound from above) over the whole batch with the demo rules, and the ablation on / off - 1 of
   the rule-free chunks beside each other, the harsher measure (a batch without rules is cheap) and the
   noisier. With learning in workers, the worker's CPU to write each chunk's queue apart. Goal (issue 5):
   ≤ 10 % on /v1/events.

    .venv/bin/python bench/recs_speed.py [--part all|slots|learning] [--no-write]

Prints the figures; a run of all parts writes bench/RECS_SPEED.md (one part alone only prints). Everything
it starts listens on 127.0.0.1 and stops.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

import events_load as ev
import report
import targets
from local_servers import redis_command, redis_server

from server import protocol as p
from server.catalog_import import load
from server.engine import BUILTIN_RULES_DIR
from server.ingest import Runtime, build_runtime
from server.learner import Learner
from server.recs import Context, Recommender
from server.recs_spec import STRATEGIES, Strategy
from server.recs_store import Increment
from server.settings import Settings
from server.sites import Site
from server.state import connect

HERE = Path(__file__).resolve().parent
RESULTS_FILE = HERE / "RECS_SPEED.md"
SITE = Site(key="bench", name="Bench", origins=(targets.ORIGIN,), secret="bench-secret")
PRODUCTS, CATEGORIES, VISITORS = 10_000, 100, 2_000
UPDATES = 1_000_000
CALLS = 2_000
ROUNDS = 3
WARM_UP = 100


def zipf(n: int, s: float = 1.1) -> list[float]:
    return [1 / (rank**s) for rank in range(1, n + 1)]


class Shop:
    """A synthetic catalog: categories of Zipf-popular items."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.items = [f"p{n}" for n in range(PRODUCTS)]
        self.by_category: dict[int, list[str]] = defaultdict(list)
        for n, item in enumerate(self.items):
            self.by_category[n % CATEGORIES].append(item)
        self.category_weights = zipf(CATEGORIES, 0.8)
        self.item_weights = {c: zipf(len(items)) for c, items in self.by_category.items()}

    def category_of(self, item: str) -> int:
        return int(item[1:]) % CATEGORIES

    def session(self) -> list[str]:
        [category] = self.rng.choices(range(CATEGORIES), self.category_weights)
        items = self.by_category[category]
        picked = self.rng.choices(items, self.item_weights[category], k=self.rng.randint(2, 5))
        return list(dict.fromkeys(picked))

    def rows(self) -> list[p.CatalogRow]:
        return [
            p.CatalogRow(
                id=item,
                title=f"Product {n}",
                price=5 + (n * 7919 % 20000) / 100,
                url=f"{targets.ORIGIN}/p/{n}",
                image_url=f"{targets.ORIGIN}/img/{n}.jpg",
                category=f"cat-{n % CATEGORIES}",
                brand=f"brand-{n % 37}",
            )
            for n, item in enumerate(self.items)
        ]


async def load_signals(runtime: Runtime, shop: Shop, now_s: float) -> int:
    """UPDATES co-occurrence increments (both directions of each pair), with norms and popularity, over
    the last two weeks, written by the same script the event path uses."""
    store, updates, chunk = runtime.recs.signals, 0, 0
    while updates < UPDATES:
        signals: list[Increment] = []
        while len(signals) < 20_000:
            items = shop.session()
            family = "bt" if shop.rng.random() < 0.25 else "vt"
            for item in items:
                category = f"c:cat-{shop.category_of(item)}"
                signals += [("pop", "all", item, 1), ("pop", category, item, 1)]
                signals += [("hot", "all", item, 1), (family[0] + "n", "n", item, 1)]
                for other in items:
                    if other != item:
                        signals.append((family, item, other, 1))
                        updates += 1
        at = now_s - 14 * 86400 * max(0.0, 1 - updates / UPDATES)
        async with runtime.store.redis.pipeline(transaction=False) as pipe:
            store.queue_signals(pipe, SITE.key, signals, at)
            await pipe.execute()
        chunk += 1
        if chunk % 10 == 0:
            print(f"   {updates:,} co-occurrence updates", flush=True)
    return updates


async def load_visitors(runtime: Runtime, shop: Shop) -> list[str]:
    """VISITORS visitors, each with a few product views and a cart, through the real event path."""
    visitors = []
    for n in range(VISITORS):
        visitor = f"{n:032x}"
        events: list[p.Event] = []
        for item in shop.session() + shop.session():
            events.append(
                p.ProductView(url=f"{targets.ORIGIN}/p/{item}", props=p.ProductProps(id=item, name=item))
            )
        events.append(p.CartAdd(props=p.CartLineProps(id=events[-1].props.id, price=10)))  # type: ignore[union-attr]
        await runtime.ingest(p.EventBatch(SITE.key, visitor, visitor, events, f"b{n:015d}"), None)
        visitors.append(visitor)
    return visitors


async def timed(call: Callable[[], Awaitable[object]], calls: int = CALLS) -> tuple[float, float, float]:
    """p50 and p99 in ms of `calls` sequential calls after a warm-up, and the mean CPU ms this process
    spent per call (what a busy machine cannot inflate as much as wall time)."""
    for _ in range(WARM_UP):
        await call()
    samples = []
    cpu = time.process_time()
    for _ in range(calls):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    cpu_ms = (time.process_time() - cpu) * 1000 / calls
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98], cpu_ms


async def with_redis_time(
    runtime: Runtime, timing: Awaitable[tuple[float, float, float]]
) -> tuple[tuple[float, float, float], float]:
    """The timing, and the µs of CPU redis-server spent per call (INFO cpu, warm-up included): what one
    Redis, shared by every server process, spends on each list. Not commandstats, which counts a script's
    commands twice, inside the script's own time and again by name."""

    async def redis_cpu_s() -> float:
        cpu = await runtime.store.redis.info("cpu")
        return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])

    before = await redis_cpu_s()
    timings = await timing
    return timings, (await redis_cpu_s() - before) * 1e6 / (CALLS + WARM_UP)


def event_batches(shop: Shop, count: int) -> list[list[p.Event]]:
    """Batches shaped like bench/events.lua's: 1-4 events, a third product views, a ninth cart adds."""
    rng, batches = shop.rng, []
    for _ in range(count):
        events: list[p.Event] = []
        for _ in range(rng.randint(1, 4)):
            item = rng.choice(shop.items)
            url = f"{targets.ORIGIN}/p/{item}"
            kind = rng.choice("pppvvvccx")
            if kind == "p":
                events.append(p.PageView(url=url, props=p.PageProps("product")))
            elif kind == "v":
                events.append(p.ProductView(url=url, props=p.ProductProps(id=item, name=item, price=10)))
            elif kind == "c":
                events.append(p.CategoryView(url=url, props=p.CategoryProps(f"cat-{shop.category_of(item)}")))
            else:
                events.append(p.CartAdd(url=url, props=p.CartLineProps(id=item, price=10)))
        batches.append(events)
    return batches


async def ingest_cpu(redis_url: str, shop: Shop) -> list[str]:
    """CPU per ingest() of the same batches, 32 at a time, alternating in chunks between four runtimes: no
    rules with recommendations off, the same with them on, the demo rules with them on, and the same with
    learning in workers. A chunk's writes behind go out in one flush at its end, charged to it. Learning's
    cost is given as the CPU counted inside learning (`Recommender.observe` and the flush) over a batch
    with the demo rules, each figure from the same chunks, and as the ablation on / off - 1 of the
    rule-free chunks beside each other (the harsher measure, as a batch without rules is cheap, and the
    noisier). With learning in workers, a worker then writes each chunk's queued flush: its CPU apart."""

    def runtime(recs: bool, rules: list[Path], in_workers: bool = False) -> Runtime:
        # No timed flush: each chunk's flush is the one its batches' learning costs.
        settings = Settings(
            redis_url=redis_url, recs=recs, write_behind_ms=3_600_000, recs_learn_in_workers=in_workers
        )
        return build_runtime(settings, {SITE.key: SITE}, connect(redis_url), rules)

    runtimes = {
        "off": runtime(False, []),
        "on": runtime(True, []),
        "rules": runtime(True, [BUILTIN_RULES_DIR]),
        "workers": runtime(True, [BUILTIN_RULES_DIR], in_workers=True),
    }
    counted = ("rules", "workers")
    observing = [0.0]
    for name in counted:
        recs = runtimes[name].recs
        recs.observe = _thread_timed(recs.observe, observing)  # type: ignore[method-assign]
    learner = Learner(Recommender(runtimes["workers"].store.redis), [SITE.key])
    batches = event_batches(shop, 11520)
    cpu: dict[str, list[float]] = {name: [] for name in runtimes}
    learned: dict[str, list[float]] = {name: [] for name in counted}
    worker_cpu = 0.0

    async def send(name: str, n: int, events: list[p.Event]) -> None:
        visitor = f"{name[:2]}{n % 500:030x}"
        batch = p.EventBatch(SITE.key, visitor, visitor, events, f"{name[:2]}{n:014d}")
        await runtimes[name].ingest(batch, None)

    for chunk in range(0, len(batches), 480):
        for name, each in runtimes.items():
            observing[0] = 0.0
            start = time.process_time()
            for group in range(chunk, chunk + 480, 32):  # 32 at a time, as wrk's 32 connections
                await asyncio.gather(*(send(name, n, batches[n]) for n in range(group, group + 32)))
            flushing = time.process_time()
            await each.behind.flush()
            end = time.process_time()
            cpu[name].append(end - start)
            if name in counted:
                learned[name].append(observing[0] + end - flushing)
        start = time.process_time()
        while await learner.run_once():
            pass
        worker_cpu += time.process_time() - start
    for each in runtimes.values():
        await each.close()
        await each.store.redis.aclose()
    per_batch = {name: sum(chunks) * 1e6 / len(batches) for name, chunks in cpu.items()}
    learning = {name: sum(chunks) * 1e6 / len(batches) for name, chunks in learned.items()}
    # Each chunk against the one beside it: a neighbour's burst on this shared machine moves one pair, not
    # the whole figure.
    ratios = sorted(a / b for a, b in zip(cpu["on"], cpu["off"], strict=True))
    shares = {name: sorted(a / b for a, b in zip(learned[name], cpu[name], strict=True)) for name in counted}
    return [
        f"In-process CPU per `ingest()` of {len(batches):,} batches shaped like bench/events.lua's, 32 "
        f"concurrent, in {len(ratios)} alternating chunks of 480 each (each chunk's flush included): no "
        f"rules with recommendations off {per_batch['off']:.0f} µs, on {per_batch['on']:.0f} µs; the demo "
        f"rules with them on {per_batch['rules']:.0f} µs, and with learning in workers "
        f"{per_batch['workers']:.0f} µs.",
        "",
        "| learning's cost, counted inside it (`observe` and the flush, which carries the rules' stats too), "
        "demo rules | µs per batch | share of the batch (median of the chunks) | quartiles |",
        "|---|---:|---:|---:|",
        *(
            f"| {label} | {learning[name]:.0f} | **{statistics.median(shares[name]):.1%}** | "
            f"{_quartiles(shares[name], 0)} |"
            for name, label in (
                ("rules", "servers write what they learn (`STORETAG_RECS_LEARN_IN_WORKERS=0`)"),
                ("workers", "learning in workers (the default with `REDIS_URL`): the server's share"),
            )
        ),
        "",
        f"With learning in workers, a worker spent {worker_cpu * 1e6 / len(batches):.0f} µs per batch "
        "writing what the servers queued.",
        "",
        f"Ablation, no rules: learning costs **{statistics.median(ratios) - 1:+.1%}** CPU per batch "
        f"(median of the pairs; quartiles {_quartiles(ratios, -1)}).",
    ]


def _quartiles(values: list[float], offset: float) -> str:
    low, high = values[len(values) // 4] + offset, values[3 * len(values) // 4] + offset
    return f"{low:+.1%} to {high:+.1%}" if offset else f"{low:.1%} to {high:.1%}"


def _thread_timed(
    observe: Callable[..., Awaitable[None]], spent: list[float]
) -> Callable[..., Awaitable[None]]:
    """observe(), adding its thread CPU to spent[0]: with no timed flush it never waits on Redis, so
    nothing else runs inside it."""

    async def timed_observe(*args: object) -> None:
        start = time.thread_time()
        await observe(*args)
        spent[0] += time.thread_time() - start

    return timed_observe


async def measure(tmp: Path, part: str) -> list[str]:
    lines = []
    with redis_server(tmp, ev.LOAD_CPU) as redis, _pinned(ev.SERVER_CPU):
        shop = Shop(random.Random(5))
        if part in ("all", "slots"):
            lines += await slots_part(redis.url, redis.port, shop)
        if part in ("all", "learning"):
            if part == "learning":  # as after the slots part: the catalog knows the products
                runtime = build_runtime(
                    Settings(redis_url=redis.url), {SITE.key: SITE}, connect(redis.url), []
                )
                await load(runtime.recs.catalog, SITE.key, SITE.currency, shop.rows())
                await runtime.store.redis.aclose()
            lines += [*([""] if lines else []), *await ingest_cpu(redis.url, shop)]
    load1, load5, _ = os.getloadavg()
    lines += [
        "",
        f"Machine load average while measuring: {load1:.1f} (1 min), {load5:.1f} (5 min); "
        f"{os.cpu_count()} CPUs.",
    ]
    return lines


async def slots_part(redis_url: str, redis_port: int, shop: Shop) -> list[str]:
    lines = []
    settings = Settings(redis_url=redis_url)
    runtime = build_runtime(settings, {SITE.key: SITE}, connect(redis_url), [BUILTIN_RULES_DIR])
    rng = shop.rng
    now_s = time.time()
    print("== loading the catalog, the signals and the visitors", flush=True)
    started = time.perf_counter()
    report = await load(runtime.recs.catalog, SITE.key, SITE.currency, shop.rows())
    updates = await load_signals(runtime, shop, now_s)
    visitors = await load_visitors(runtime, shop)
    await runtime.behind.flush()
    load_s = time.perf_counter() - started
    keys = int(redis_command(redis_port, "DBSIZE").lstrip(b":"))
    memory = await runtime.store.redis.info("memory")
    contexts = []
    for visitor in visitors[:500]:
        state = await runtime.store.load(SITE.key, visitor)
        ctx = Context.of(state)
        contexts.append(Context(rng.choice(ctx.recent), ctx.cart, ctx.recent, ctx.bought, ctx.category))
    lines += [
        f"Loaded {report.loaded:,} products, {updates:,} co-occurrence updates and "
        f"{len(visitors):,} visitors in {load_s:.0f} s: {keys:,} keys, "
        f"Redis used_memory {memory['used_memory_human']}.",
        "",
        f"| list (top 10) | p50 ms | p99 ms (median of {ROUNDS} rounds) | p99 of the worst round "
        "| CPU ms/call | Redis CPU µs/call |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    rows: dict[str, Callable[[], Awaitable[object]]] = {}
    for name in STRATEGIES:
        strategy = Strategy(name)

        async def recommend(strategy: Strategy = strategy) -> object:
            ctx = rng.choice(contexts)
            return await runtime.recs.recommend(SITE.key, ctx, strategy, 10, int(time.time() * 1000))

        rows[f"strategy `{name}` with its fallback chain"] = recommend
    for slot, item in (("product_recs", True), ("cart_recs", False), ("home_recs", False)):

        async def whole_slot(slot: str = slot, item: bool = item) -> object:
            visitor = rng.choice(visitors[:500])
            query = p.RecsQuery(SITE.key, visitor, slot, rng.choice(shop.items) if item else None)
            answer = await runtime.recs_for(query, None)
            assert answer.actions, f"slot {slot} came back empty"
            return answer

        rows[f"whole slot `{slot}` (state, rules, list, template)"] = whole_slot
    # Rounds taking turns, so that a burst of the machine's other work lands in one round of a row.
    rounds: defaultdict[str, list[tuple[tuple[float, float, float], float]]] = defaultdict(list)
    for n in range(ROUNDS):
        print(f"== round {n + 1} of {ROUNDS}", flush=True)
        for label, call in rows.items():
            rounds[label].append(await with_redis_time(runtime, timed(call)))
    for label, measured in rounds.items():
        p50 = statistics.median(p50 for (p50, _, _), _ in measured)
        p99s = [p99 for (_, p99, _), _ in measured]
        cpu = statistics.mean(cpu for (_, _, cpu), _ in measured)
        redis_us = statistics.mean(redis_us for _, redis_us in measured)
        lines.append(
            f"| {label} | {p50:.2f} | {statistics.median(p99s):.2f} | {max(p99s):.2f} | {cpu:.2f} "
            f"| {redis_us:.0f} |"
        )
        print(f"   {label}: p50 {p50:.2f} ms, p99 {statistics.median(p99s):.2f} ms ({p99s})", flush=True)
    await runtime.store.redis.aclose()
    return lines


class _pinned:
    """This process on one CPU while measuring, as a server worker would be; redis-server on the other."""

    def __init__(self, cpu: str) -> None:
        self.cpu = cpu
        self.before: set[int] = set()

    def __enter__(self) -> None:
        if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
            self.before = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {int(self.cpu)})

    def __exit__(self, *exc: object) -> None:
        if self.before:
            os.sched_setaffinity(0, self.before)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "slots", "learning"), default="all")
    parser.add_argument("--no-write", action="store_true", help=f"do not overwrite {RESULTS_FILE.name}")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sections = []
    with tempfile.TemporaryDirectory(prefix="storetag-recs-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        heading = "## Learning" if args.part == "learning" else "## Slot server time"
        sections += [heading, "", *asyncio.run(measure(tmp, args.part)), ""]
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    notes = [
        f"- Date: {now}; machine: {report.cpu_model()}, {os.cpu_count()} CPUs; "
        f"Redis {report.redis_version()}",
        f"- Command: `{' '.join(['.venv/bin/python', 'bench/recs_speed.py', *sys.argv[1:]])}`",
    ]
    if args.part != "learning":
        notes.append(
            f"- Slots: {ROUNDS} rounds, taking turns, of {CALLS:,} sequential calls per row after "
            f"{WARM_UP} warm-up calls, this process on CPU "
            f"{ev.SERVER_CPU} and redis-server on CPU {ev.LOAD_CPU}, over TCP loopback. Contexts: a random "
            "product of a random visitor's history as the page, with that visitor's cart and history."
        )
    text = "\n".join(["# Recommendations: speed", "", *sections, *notes, ""])
    print(text)
    if args.part == "all" and not args.no_write:
        RESULTS_FILE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
