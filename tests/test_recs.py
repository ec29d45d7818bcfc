"""The strategies, on a real Redis: what each recommends, what every list leaves out, how lists fall back,
how old signal fades and how memory stays bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from server.learner import Learner
from server.recs import Recommender
from server.recs_spec import Strategy
from server.recs_store import POP, ListCache, learned_key, signal_key
from server.rules import (
    bought_together,
    category_popular,
    for_you,
    popular,
    recently_viewed,
    similar,
    trending,
    viewed_together,
)
from server.settings import Settings
from server.testing import Simulator
from server.write_behind import WriteBehind


@pytest.fixture
async def sim(redis: aioredis.Redis) -> AsyncIterator[Simulator]:
    yield Simulator(rules=[], redis=redis)


@pytest.fixture
async def sim_reusing_lists(redis: aioredis.Redis) -> AsyncIterator[Simulator]:
    """As a server process: lists read from Redis are reused for 10 s (STORETAG_RECS_CACHE_MS)."""
    yield Simulator(rules=[], redis=redis, settings=Settings(write_behind_ms=0, recs_cache_ms=10_000))


async def view(sim: Simulator, *products: str, category: str = "kitchen") -> None:
    for product in products:
        await sim.product_page(product, name=product.title(), price=10, category=category)


async def session(sim: Simulator, *products: str, category: str = "kitchen") -> None:
    sim.new_visitor()
    await view(sim, *products, category=category)


async def newcomer(sim: Simulator) -> None:
    """A new visitor on the home page: nothing of theirs to leave out."""
    sim.new_visitor()
    await sim.page_view()


async def order(sim: Simulator, *products: str) -> None:
    sim.new_visitor()
    await view(sim, *products)
    items = [{"id": product, "price": 10, "category": "kitchen"} for product in products]
    await sim.track("purchase", order_id=sim.visitor, value=10 * len(items), items=items)


async def test_recently_viewed_lists_the_visitors_products_over_visits_most_recent_first(
    sim: Simulator,
) -> None:
    await view(sim, "mug", "teapot")
    sim.advance(days=2)
    await view(sim, "beans")
    assert await sim.recommend(recently_viewed(fallback=False)) == ["teapot", "mug"]
    await sim.page_view()
    assert await sim.recommend(recently_viewed(fallback=False)) == ["beans", "teapot", "mug"]


async def test_popular_fades_with_time_so_todays_favourite_beats_last_months(sim: Simulator) -> None:
    for _ in range(20):
        await session(sim, "old-hit")
    await newcomer(sim)
    assert (await sim.recommend(popular()))[:1] == ["old-hit"]
    sim.advance(days=30)
    for _ in range(5):
        await session(sim, "new-hit")
    await newcomer(sim)
    assert (await sim.recommend(popular()))[:2] == ["new-hit", "old-hit"]


async def test_category_popular_keeps_to_the_pages_category(sim: Simulator) -> None:
    for _ in range(3):
        await session(sim, "pen", category="stationery")
    await session(sim, "mug", "teapot")
    await session(sim, "teapot")
    await session(sim, "cup")
    assert await sim.recommend(category_popular(fallback=False)) == ["teapot", "mug"]
    assert await sim.recommend(popular("stationery", fallback=False)) == ["pen"]
    assert await sim.recommend(category_popular()) == ["teapot", "mug", "pen"]


async def test_trending_finds_what_rises_against_its_own_usual_level(sim: Simulator) -> None:
    for _ in range(14):
        for _ in range(3):
            await session(sim, "steady")
        await session(sim, "sleeper")
        sim.advance(days=1)
    for _ in range(6):
        await session(sim, "sleeper")
    await newcomer(sim)
    assert await sim.recommend(trending(fallback=False)) == ["sleeper"]
    assert (await sim.recommend(popular()))[0] == "steady"


async def test_viewed_together_is_normalised_so_a_best_seller_does_not_win_every_list(sim: Simulator) -> None:
    for n in range(40):
        await session(sim, "best-seller", f"other-{n}")
    for _ in range(4):
        await session(sim, "mug", "best-seller")
    for _ in range(3):
        await session(sim, "mug", "beans")
    await session(sim, "mug")
    assert await sim.recommend(viewed_together(fallback=False)) == ["beans", "best-seller"]


async def test_a_product_viewed_again_in_the_same_session_is_paired_once(sim: Simulator) -> None:
    await session(sim, "mug", "beans", "mug", "beans", "mug")
    await session(sim, "mug", "teapot")
    await session(sim, "mug", "teapot")
    await session(sim, "mug")
    assert await sim.recommend(viewed_together(fallback=False)) == ["teapot", "beans"]


async def test_bought_together_comes_from_orders_and_without_a_product_from_the_cart(sim: Simulator) -> None:
    await order(sim, "mug", "beans")
    await order(sim, "mug", "beans")
    await order(sim, "mug", "teapot")
    await order(sim, "teapot", "tea")
    sim.new_visitor()
    await view(sim, "mug")
    assert await sim.recommend(bought_together(fallback=False)) == ["beans", "teapot"]
    await sim.track("cart_add", id="teapot", price=10)
    await sim.page_view(page_type="cart")
    assert (await sim.recommend(bought_together(fallback=False)))[:2] == ["tea", "mug"]


async def test_similar_is_the_same_category_and_price_band_with_the_same_brand_first(sim: Simulator) -> None:
    def row(item: str, price: float, brand: str, category: str = "Kitchen > Mugs") -> dict[str, object]:
        return {
            "id": item,
            "title": item,
            "price": price,
            "brand": brand,
            "category": category,
            "url": f"https://shop.test/p/{item}",
        }

    await sim.import_catalog(
        row("mug", 12, "Acme"),
        row("cup", 10, "Other"),
        row("mug-xl", 15, "Acme"),
        row("gold-mug", 100, "Acme"),
        row("pen", 12, "Acme", category="Stationery"),
    )
    await sim.product_page("mug")
    assert await sim.recommend(similar(fallback=False)) == ["mug-xl", "cup"]


async def test_for_you_blends_the_neighbours_of_what_the_visitor_viewed_lately(sim: Simulator) -> None:
    for _ in range(2):
        await session(sim, "pen", "ink")
        await session(sim, "mug", "beans")
    await session(sim, "pen")
    await view(sim, "mug")
    await sim.page_view()
    assert (await sim.recommend(for_you(fallback=False)))[:2] == ["beans", "ink"]


async def test_for_you_adds_up_what_is_viewed_and_what_is_bought_with_the_visitors_items(
    sim: Simulator,
) -> None:
    for _ in range(2):
        await session(sim, "teapot", "cups")
    await order(sim, "teapot", "tea")
    sim.new_visitor()
    await sim.track("cart_add", id="teapot", price=10)
    await sim.page_view()
    assert await sim.recommend(viewed_together(item="teapot", fallback=False)) == ["cups", "tea"]
    assert await sim.recommend(for_you(fallback=False)) == ["tea", "cups"]


async def test_every_list_leaves_out_the_page_the_cart_purchases_and_what_is_not_on_offer(
    sim: Simulator,
) -> None:
    await session(sim, "mug", "beans")
    for _ in range(3):
        await session(sim, "mug", "beans", "teapot", "tea", "cup", "spoon")
    await sim.import_catalog(
        {
            "id": "spoon",
            "title": "Spoon",
            "price": 3,
            "availability": "out_of_stock",
            "url": "https://shop.test/p/spoon",
        }
    )
    sim.new_visitor()
    await sim.track("purchase", order_id="o-1", value=10, items=[{"id": "tea", "price": 10}])
    await sim.track("cart_add", id="teapot", price=10)
    await view(sim, "beans", "mug")
    assert await sim.recommend(viewed_together()) == ["beans", "cup"]
    await sim.runtime.recs.catalog.remove(sim.site.key, ["cup"])
    assert await sim.recommend(viewed_together()) == ["beans"]
    await sim.track("purchase", order_id="o-2", value=10, items=[{"id": "beans", "price": 10}])
    assert "beans" not in await sim.recommend(viewed_together())
    assert await sim.recommend(recently_viewed(fallback=False)) == ["beans"]  # bought, yet viewed


async def test_a_process_reuses_a_neighbour_list_for_its_cache_time_but_never_a_product_off_the_shelf(
    sim_reusing_lists: Simulator,
) -> None:
    sim = sim_reusing_lists
    for _ in range(2):
        await session(sim, "mug", "beans")
    await session(sim, "mug")
    assert await sim.recommend(viewed_together(fallback=False)) == ["beans"]
    for _ in range(3):
        await session(sim, "mug", "teapot")
    await session(sim, "mug")
    assert await sim.recommend(viewed_together(fallback=False)) == ["beans"]
    await sim.import_catalog(
        {
            "id": "beans",
            "title": "Beans",
            "price": 9,
            "availability": "out_of_stock",
            "url": "https://shop.test/p/b",
        }
    )
    assert await sim.recommend(viewed_together(fallback=False)) == []
    sim.advance(seconds=10)
    assert await sim.recommend(viewed_together(fallback=False)) == ["teapot"]


@pytest.mark.parametrize("strategy", [popular, trending], ids=["popular", "trending"])
async def test_a_process_reuses_a_site_wide_list_for_its_cache_time_but_never_a_product_off_the_shelf(
    sim_reusing_lists: Simulator, strategy: Callable[..., Strategy]
) -> None:
    sim = sim_reusing_lists
    await newcomer(sim)
    assert await sim.recommend(strategy(fallback=False)) == []  # a new shop: its first traffic shows at once
    for _ in range(2):
        await session(sim, "mug")
    await session(sim, "teapot")
    await newcomer(sim)
    assert await sim.recommend(strategy(fallback=False)) == ["mug", "teapot"]
    for _ in range(3):
        await session(sim, "teapot")
    await newcomer(sim)
    assert await sim.recommend(strategy(fallback=False)) == ["mug", "teapot"]
    await sim.import_catalog(
        {
            "id": "mug",
            "title": "Mug",
            "price": 9,
            "availability": "out_of_stock",
            "url": "https://shop.test/p/m",
        }
    )
    assert await sim.recommend(strategy(fallback=False)) == ["teapot"]
    sim.advance(seconds=10)
    await sim.import_catalog({"id": "mug", "title": "Mug", "price": 9, "url": "https://shop.test/p/m"})
    assert await sim.recommend(strategy(fallback=False)) == ["teapot", "mug"]


async def test_for_you_blends_lists_read_earlier_with_lists_read_now_each_product_with_its_record(
    sim_reusing_lists: Simulator,
) -> None:
    sim = sim_reusing_lists
    for _ in range(2):
        await session(sim, "pen", "ink")
        await session(sim, "mug", "beans")
    await session(sim, "pen")
    await sim.page_view()
    assert await sim.recommend(for_you(fallback=False)) == ["ink"]
    await session(sim, "pen", "mug")
    await sim.page_view()
    assert await sim.recommend(for_you(fallback=False)) == ["beans", "ink"]


def test_a_process_keeps_the_neighbour_lists_it_read_last_and_no_more() -> None:
    lists = ListCache(ttl_s=60, max_lists=2)
    for n, source in enumerate(("mug", "beans", "teapot")):
        lists.put(("shop", "vt", 0, source, 10), {"cup": 1.0}, now_s=n)
    assert [lists.get(("shop", "vt", 0, source, 10), now_s=3) for source in ("mug", "beans", "teapot")] == [
        None,
        {"cup": 1.0},
        {"cup": 1.0},
    ]


async def test_with_learning_in_workers_lists_and_catalog_learn_what_servers_queued_once_a_worker_writes_it(
    redis: aioredis.Redis,
) -> None:
    queueing = Settings(write_behind_ms=0, recs_cache_ms=0, recs_learn_in_workers=True)
    sim = Simulator(rules=[], redis=redis, settings=queueing)
    learner = Learner(Recommender(redis), [sim.site.key])
    assert await learner.run_once() == 0  # nothing queued yet; it says it writes the site's queue
    await sim.import_catalog(
        *(
            {"id": item, "title": item, "price": 5, "url": f"https://shop.test/p/{item}"}
            for item in ("mug", "beans")
        )
    )
    for _ in range(2):
        await session(sim, "mug", "beans")
    await session(sim, "mug", "teapot")  # the catalog knows teapot from this product view only
    await session(sim, "mug")
    assert await sim.recommend(viewed_together(fallback=False)) == []
    assert await sim.runtime.recs.catalog.get(sim.site.key, ["teapot"]) == {}

    # A flush per product page here (no write-behind interval), each taken once.
    assert [await learner.run_once() for _ in range(8)] == [1] * 7 + [0]
    assert await sim.recommend(viewed_together(fallback=False)) == ["beans", "teapot"]


async def test_with_no_worker_writing_the_queue_a_server_writes_it_itself_at_its_flush(
    redis: aioredis.Redis,
) -> None:
    queueing = Settings(write_behind_ms=0, recs_cache_ms=0, recs_learn_in_workers=True)
    sim = Simulator(rules=[], redis=redis, settings=queueing)
    for _ in range(2):
        await session(sim, "mug", "beans")
    await session(sim, "mug")
    assert await sim.recommend(viewed_together(fallback=False)) == ["beans"]
    assert await redis.llen(learned_key(sim.site.key)) == 0


async def test_a_list_falls_back_along_its_chain_so_a_slot_is_never_empty(sim: Simulator) -> None:
    await session(sim, "pen", category="stationery")
    await session(sim, "pen", category="stationery")
    await session(sim, "mug")
    sim.new_visitor()
    await view(sim, "brand-new")
    assert await sim.recommend(for_you(fallback=False)) == []
    assert await sim.recommend(viewed_together(fallback=False)) == []
    assert await sim.recommend(for_you()) == ["mug", "pen"]


async def test_neighbour_lists_are_capped_and_every_signal_key_expires(
    sim: Simulator, redis: aioredis.Redis
) -> None:
    sim.new_visitor()
    for n in range(60):
        await sim.product_page("hub", name="Hub", price=1)
        await sim.product_page(f"spoke-{n}", name="Spoke", price=1)
        sim.advance(minutes=31)  # a new session each time, so each spoke is paired with the hub
    [hub_key] = [key async for key in redis.scan_iter("st:{shop}:r:vt:*:hub")]
    assert await redis.zcard(hub_key) == 50
    async for key in redis.scan_iter("st:{shop}:r:*"):
        assert 0 < await redis.ttl(key) <= 240 * 86400, key


async def test_a_busy_flush_of_learning_lands_whole_and_other_clients_commands_run_between_its_calls(
    redis: aioredis.Redis, redis_url: str
) -> None:
    """A quarter second of a busy shop's views: more keys and members than one script call may carry (so
    that none holds Redis up), each call in a round trip of its own (so that a visitor's own commands run
    between them, not behind the whole flush), and every one of them is written."""
    behind = WriteBehind(redis, 3600)
    store = Recommender(redis, behind).signals
    now_s = 1_800_000_000.0
    views = [("pop", f"c:cat-{c}", f"p{c}-{n}", 1.0) for c in range(150) for n in range(4)]
    store.add_signals("shop", [*views, *views[:1]], now_s)
    order: list[str] = []
    watcher = aioredis.Redis.from_url(redis_url)
    async with watcher.monitor() as monitor:

        async def watch() -> None:
            while "ECHO" not in (command := (await monitor.next_command())["command"]):
                order.append("visitor" if command.startswith("GET") else "flush" * ("ZINCRBY" in command))

        watching = asyncio.create_task(watch())
        await redis.ping()
        flushing = asyncio.create_task(behind.flush())
        while not flushing.done():
            await redis.get("st:{shop:v1}:state")
        await redis.echo("the flush is over")
        await watching
    await watcher.aclose()
    calls = [name for name in order if name]
    assert calls.count("flush") >= 3
    # Between the first and the last of the flush's calls, a visitor's command ran.
    first, last = calls.index("flush"), len(calls) - 1 - calls[::-1].index("flush")
    assert "visitor" in calls[first:last]

    def popularity(category: str, item: str) -> Awaitable[float | None]:
        return redis.zscore(signal_key("shop", "pop", POP.decay.era(now_s), f"c:{category}"), item)

    twice, once = await popularity("cat-0", "p0-0"), await popularity("cat-0", "p0-3")
    assert twice == pytest.approx(2 * (once or 0)) and once
    assert await popularity("cat-149", "p149-3") == pytest.approx(once)
