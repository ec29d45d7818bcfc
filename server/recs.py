"""Recommendations: learning from each batch of events, and the strategies that fill a slot.

Each strategy ranks candidates from the signals in Redis. `recommend` then drops the page's product, the
cart, what the visitor bought (except for recently viewed), for "for you" what they viewed last, and what
the catalog does not offer (unknown, removed, out of stock, without title or URL), and tops a short list
up from the rest of its chain, whose stages are computed concurrently; neighbour lists are blended inside
Redis. Rankings read their members' catalog records in the same script, so a list usually costs one
round trip to Redis, and one more when it falls back.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial

import msgspec
import redis.asyncio as aioredis

from server import protocol as p
from server.catalog import Catalog, Product, decode
from server.recs_spec import Recs, Strategy
from server.recs_store import (
    BOUGHT_NORM,
    BOUGHT_TOGETHER,
    HOT,
    POP,
    VIEWED_NORM,
    VIEWED_TOGETHER,
    Family,
    Merged,
    Ranking,
    SignalStore,
    learned_key,
    learner_key,
    signal_key,
)
from server.signals import learn
from server.sites import Site
from server.visitor import VisitorState
from server.write_behind import Flush, WriteBehind

CHAINS: dict[str, tuple[str, ...]] = {
    "for_you": ("viewed_together", "category_popular", "popular"),
    "bought_together": ("viewed_together", "category_popular", "popular"),
    "viewed_together": ("category_popular", "popular"),
    "similar": ("category_popular", "popular"),
    "recently_viewed": ("category_popular", "popular"),
    "trending": ("popular",),
    "category_popular": ("popular",),
    "popular": (),
}
# Co-occurrence is normalised as a cosine with this pseudo-count added to each item's own weight, so an
# item seen once with the anchor does not outrank one seen with it a hundred times.
SHRINK = 2.0
# Trending compares the last day's rate with the week's, plus this many events of prior.
TRENDING_POOL, BASELINE_PRIOR = 100, 5.0
SIMILAR_POOL, PRICE_BAND = 50, 1.5
FOR_YOU_RECENT, FOR_YOU_BOUGHT, RECENCY_WEIGHT = 5, 3, 0.8
# For you blends each source's strongest neighbours only: in bench/recs_quality.py 10 rank as well as 40
# (hit-rate@10 0.415 against 0.410), and Redis blends them in a quarter of the time.
FOR_YOU_NEIGHBOURS = 10


# With learning in workers: a worker says it is writing a site's queue for this long after each look at it;
# a server whose flush finds no worker saying so writes the queue itself, so that learning never stalls.
LEARNER_SEEN_S = 5
# The queue never holds more than this many flushes (workers too few to keep up): the oldest go.
MAX_QUEUED_FLUSHES = 5_000


class Learned(msgspec.Struct, array_like=True):
    """What one server flush learned for a site, queued for workers: increments by second, and products
    first seen in events."""

    signals: dict[float, Merged]
    sightings: list[Product]


_learned_encoder = msgspec.msgpack.Encoder()
_learned_decoder = msgspec.msgpack.Decoder(Learned)


@dataclass(frozen=True)
class Context:
    """What a list is for: the page's product, the cart and the visitor's history (most recent last)."""

    item: str = ""
    cart: tuple[str, ...] = ()
    recent: tuple[str, ...] = ()
    bought: tuple[str, ...] = ()
    category: str = ""

    @classmethod
    def of(cls, state: VisitorState) -> Context:
        session, profile = state.session, state.profile
        category = next(reversed(session.categories), "")
        return cls(session.item, tuple(session.cart), tuple(profile.recent), tuple(profile.bought), category)


class Recommender:
    def __init__(
        self,
        redis: aioredis.Redis,
        behind: WriteBehind | None = None,
        lists_ttl_s: float = 0.0,
        learn_in_workers: bool = False,
    ) -> None:
        self.redis = redis
        self.behind = behind or WriteBehind(redis, 0)
        self.behind.add_source(self)
        self.catalog = Catalog(redis)
        self.signals = SignalStore(redis, self.catalog, self.behind, lists_ttl_s)
        self.learn_in_workers = learn_in_workers
        # Site → product id → the product as first seen since the last flush.
        self._sightings: defaultdict[str, dict[str, Product]] = defaultdict(dict)
        # With learning in workers: the sites whose flushes the last drain queued, and those of them that no
        # worker said it was writing.
        self._queued_to: list[str] = []
        self._unattended: set[str] = set()

    async def observe(self, site: Site, state: VisitorState, events: Sequence[p.Event], now_ms: int) -> None:
        """Learns what the batch teaches: signals, sightings of new products, attribution counters; written
        behind the answer."""
        seen = self._sightings[site.key]
        lessons = learn(state, events, site.currency, seen)
        if not (lessons.signals or lessons.counts or lessons.sightings):
            return
        seen.update(lessons.sightings)
        self.signals.add_signals(site.key, lessons.signals, now_ms / 1000)
        self.signals.add_counts(site.key, lessons.counts)
        await self.behind.written()

    def drain(self, flush: Flush) -> int:
        """What the flush writes: signals and sightings as script calls apart, or, with learning in workers,
        queued for them in one command per site; the counters into its pipeline."""
        sightings, self._sightings = self._sightings, defaultdict(dict)
        if not self.learn_in_workers:
            for site, products in sightings.items():
                flush.apart += self.catalog.sighting_calls(site, list(products.values()))
            return self.signals.queue_pending(flush)
        increments = self.signals.take_increments()
        self._queued_to, self._unattended = list(increments.keys() | sightings.keys()), set()
        for site in self._queued_to:
            learned = Learned(increments.get(site, {}), list(sightings.get(site, {}).values()))
            flush.pipe.rpush(learned_key(site), _learned_encoder.encode(learned))
            flush.pipe.ltrim(learned_key(site), -MAX_QUEUED_FLUSHES, -1)
            flush.pipe.exists(learner_key(site))
            flush.apart.append(partial(self._write_unattended, site))
        return 3 * len(self._queued_to) + self.signals.queue_pending(flush)

    def took(self, replies: Sequence[object]) -> None:
        seen = replies[2 : 3 * len(self._queued_to) : 3]  # each site's EXISTS of a worker's word
        self._unattended = {site for site, worker in zip(self._queued_to, seen, strict=True) if not worker}

    async def _write_unattended(self, site: str) -> None:
        if site in self._unattended:
            while await self.write_queued(site):
                pass

    async def attend(self, site: str) -> None:
        """As a worker: says it is writing the site's queue, for the next LEARNER_SEEN_S."""
        await self.redis.set(learner_key(site), b"1", ex=LEARNER_SEEN_S)

    async def write_queued(self, site: str) -> bool:
        """As a worker: writes the oldest server flush queued for the site, if any, in the calls a server
        would have made. A flush taken is gone from the queue: a worker that dies writing it loses the rest
        of it, as a server that dies loses what it has not flushed."""
        raw = await self.redis.lpop(learned_key(site))
        if not isinstance(raw, bytes):
            return False
        learned = _learned_decoder.decode(raw)
        calls = self.catalog.sighting_calls(site, learned.sightings)
        for call in calls + self.signals.increment_calls(site, learned.signals):
            await call()
        return True

    async def fill(
        self, site: Site, state: VisitorState, specs: Sequence[Recs], now_ms: int
    ) -> dict[str, list[Product]]:
        """The products for each slot asked for, computed concurrently."""
        if not specs:
            return {}
        ctx = Context.of(state)
        lists = await asyncio.gather(
            *(self.recommend(site.key, ctx, spec.strategy, spec.limit, now_ms) for spec in specs)
        )
        return {spec.slot: products for spec, products in zip(specs, lists, strict=True)}

    async def recommend(
        self, site: str, ctx: Context, strategy: Strategy, limit: int, now_ms: int
    ) -> list[Product]:
        lookup = Lookup(self, site, ctx, strategy, now_ms / 1000, n=3 * limit + 10)
        stages = [strategy.name, *(CHAINS[strategy.name] if strategy.fallback else ())]
        page = {lookup.item, *ctx.cart} - {""}
        if strategy.name == "for_you":  # discovery: not what the visitor has just looked at
            page |= set(ctx.recent[-FOR_YOU_RECENT:])
        chosen: list[Product] = []
        seen: set[str] = set()
        # The strategy alone first; only a list that comes up short computes the rest of its chain.
        for batch in (stages[:1], stages[1:]):
            if not batch or len(chosen) >= limit:
                break
            rankings = await asyncio.gather(*(lookup.rank(stage) for stage in batch))
            candidates: list[str] = []
            for stage, ranking in zip(batch, rankings, strict=True):
                excluded = page if stage == "recently_viewed" else page | set(ctx.bought)
                candidates += [item for item in ranking if item not in excluded and item not in seen]
                seen.update(candidates)
            shortlist = candidates[: lookup.n]
            await lookup.read(shortlist)
            for item in shortlist:
                if len(chosen) >= limit:
                    break
                product = lookup.product(item)
                if product is not None and product.recommendable:
                    chosen.append(product)
        return chosen


class Lookup:
    """One list's computation: the strategies, sharing the page's product record and the records read."""

    def __init__(
        self, recommender: Recommender, site: str, ctx: Context, strategy: Strategy, now_s: float, n: int
    ) -> None:
        self.catalog, self.signals = recommender.catalog, recommender.signals
        self.site, self.ctx, self.now_s, self.n = site, ctx, now_s, n
        self.item = strategy.item if strategy.item is not None else ctx.item
        self.category = strategy.category
        # Records read, decoded only once a list needs them (most lists need a fraction of what they read).
        self.raw: dict[str, bytes] = {}
        self.known: dict[str, Product] = {}
        # Ids whose records have been read, found or not: none is read twice.
        self.asked: set[str] = set()
        self._current: asyncio.Future[dict[str, Product]] | None = None
        self.strategies: dict[str, Callable[[], Awaitable[list[str]]]] = {
            "recently_viewed": self.recently_viewed,
            "popular": self.popular,
            "category_popular": self.category_popular,
            "trending": self.trending,
            "viewed_together": self.viewed_together,
            "bought_together": self.bought_together,
            "similar": self.similar,
            "for_you": self.for_you,
        }

    async def rank(self, strategy: str) -> list[str]:
        return await self.strategies[strategy]()

    async def read(self, ids: Sequence[str]) -> None:
        """Reads the records of those of the ids not read yet, and the page product's with them if unread:
        a fallback needs it (category popular), and would otherwise wait for one more round trip."""
        missing = [item for item in dict.fromkeys([*ids, self.item]) if item and item not in self.asked]
        self.raw.update(await self.catalog.raw(self.site, missing))
        self.asked.update(missing)

    def product(self, item: str) -> Product | None:
        """The product's record, if it has one and it was read."""
        product = self.known.get(item)
        if product is None and item in self.raw:
            product = self.known[item] = decode(self.raw.pop(item))
        return product

    async def records(self, ids: Sequence[str]) -> dict[str, Product]:
        await self.read(ids)
        return {item: product for item in ids if (product := self.product(item)) is not None}

    async def current(self) -> Product | None:
        """The catalog record of the page's product, read once however many strategies need it."""
        if not self.item:
            return None
        if self._current is None:
            self._current = asyncio.ensure_future(self.records([self.item]))
        await self._current
        return self.product(self.item)

    async def recently_viewed(self) -> list[str]:
        return list(reversed(self.ctx.recent))

    async def popular(self) -> list[str]:
        return await self._top(POP, "all")

    async def category_popular(self) -> list[str]:
        category = self.category
        if category is None:
            current = await self.current()
            category = current.category if current and current.category else self.ctx.category
        return await self._top(POP, f"c:{category}") if category else []

    async def trending(self) -> list[str]:
        # Rates per second over each half-life, the last day's against the week's (plus a prior): an item
        # rises when hot / recent > (usual + prior) / baseline / POP's half-life.
        recent = HOT.decay.factor(self.now_s, HOT.decay.era(self.now_s)) * HOT.decay.half_life_s
        baseline = POP.decay.factor(self.now_s, POP.decay.era(self.now_s))
        scale, prior = baseline * POP.decay.half_life_s / recent, BASELINE_PRIOR * baseline
        also = self._also()
        rising = await self.signals.rising(self.site, TRENDING_POOL, scale, prior, self.n, self.now_s, also)
        return _ranked(self._keep(rising, also))

    async def viewed_together(self) -> list[str]:
        anchor = self.item or (self.ctx.recent[-1] if self.ctx.recent else "")
        sources = {anchor: 1.0} if anchor else {}
        return _ranked(await self._neighbours([(VIEWED_TOGETHER, VIEWED_NORM, sources)], self.n))

    async def bought_together(self) -> list[str]:
        # Without a product on the page: what goes with the cart, or else with the last purchase.
        anchors = [self.item] if self.item else list(self.ctx.cart or self.ctx.bought[-1:])
        sources = dict.fromkeys(anchors, 1.0)
        return _ranked(await self._neighbours([(BOUGHT_TOGETHER, BOUGHT_NORM, sources)], self.n))

    async def for_you(self) -> list[str]:
        sources = {
            item: RECENCY_WEIGHT**age for age, item in enumerate(reversed(self.ctx.recent[-FOR_YOU_RECENT:]))
        }
        sources.update(dict.fromkeys(self.ctx.cart, 1.0))
        for item in self.ctx.bought[-FOR_YOU_BOUGHT:]:
            sources.setdefault(item, 0.5)
        groups = [(VIEWED_TOGETHER, VIEWED_NORM, sources), (BOUGHT_TOGETHER, BOUGHT_NORM, sources)]
        return _ranked(await self._neighbours(groups, FOR_YOU_NEIGHBOURS))

    async def similar(self) -> list[str]:
        product = await self.current()
        if product is None or not product.category:
            return []
        price = product.current_price
        low, high = (price / PRICE_BAND, price * PRICE_BAND) if price else (0.0, math.inf)
        popularity_key = signal_key(self.site, POP.name, POP.decay.era(self.now_s), "all")
        popularity, raws = await self.catalog.in_category(
            self.site, product.category, low, high, SIMILAR_POOL, popularity_key
        )
        self._keep(Ranking(popularity, raws), "")
        same = {
            item: found
            for item in popularity
            if (found := self.product(item)) is not None and found.category == product.category
        }

        def closeness(item: str) -> tuple[bool, float]:
            return (bool(product.brand) and same[item].brand == product.brand, popularity[item])

        return sorted(same, key=closeness, reverse=True)

    async def _top(self, family: Family, sub: str) -> list[str]:
        also = self._also()
        top = await self.signals.top(self.site, family, sub, self.n, self.now_s, also)
        return list(self._keep(top, also))

    async def _neighbours(
        self, groups: Sequence[tuple[Family, Family, dict[str, float]]], per_source: int
    ) -> dict[str, float]:
        """The groups' neighbours blended (see SignalStore.neighbours)."""
        if not any(sources for _, _, sources in groups):
            return {}
        also = self._also()
        blend = await self.signals.neighbours(self.site, groups, per_source, self.n, SHRINK, self.now_s, also)
        return self._keep(blend, also)

    def _also(self) -> str:
        """The page's product, while its record is still to read: rankings read it with theirs."""
        return self.item if self.item and self.item not in self.asked else ""

    def _keep(self, ranking: Ranking, also: str) -> dict[str, float]:
        """The ranking's scores; the records read with it join those known to this list."""
        self.raw.update({item: raw for item, raw in ranking.records.items() if item not in self.known})
        self.asked.update(ranking.scores)
        if also:
            self.asked.add(also)
        return ranking.scores


def _ranked(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=lambda item: scores[item], reverse=True)
