"""The product catalog in Redis: imported rows, products first seen in events, removals.

Keys (site-wide, so one site's catalog lives in one Redis Cluster slot):
    st:{SITE}:p              hash  product id → msgpack Product, at most MAX_PRODUCTS (removals stay as
                                   tombstones so a stale page cannot bring a product back)
    st:{SITE}:pc:CATEGORY    zset  product id → price: the category's products by price, for "similar"
Both are bounded by the catalog's size, so neither needs a TTL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from urllib.parse import urljoin, urlsplit

import msgspec
import redis.asyncio as aioredis

from server import protocol as p
from server.write_behind import Call

MAX_PRODUCTS = 200_000

# KEYS[1] catalog, then category indexes; ARGV[1] max products, ARGV[2] JSON [[index in KEYS of the
# product's category index (0 = no category), price], …], then each product's id and record in that order.
# A product seen in an event is recorded only while unknown: imports and removals always win.
_SIGHT = """
local max, placed, recorded = tonumber(ARGV[1]), cjson.decode(ARGV[2]), 0
for i, where in ipairs(placed) do
  local id = ARGV[1 + 2 * i]
  if redis.call('HEXISTS', KEYS[1], id) == 0 and redis.call('HLEN', KEYS[1]) < max then
    redis.call('HSET', KEYS[1], id, ARGV[2 + 2 * i])
    if where[1] > 0 then redis.call('ZADD', KEYS[where[1]], where[2], id) end
    recorded = recorded + 1
  end
end
return recorded
"""
# KEYS[1] a category's index, KEYS[2] a sorted set scoring products, KEYS[3] the catalog; ARGV[1] and [2] the
# price band, ARGV[3] how many. Returns the first products in the band, their scores (false: none) and their
# records (false: none), so that "similar" costs one round trip.
_IN_BAND = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
if #ids == 0 then return {{}, {}, {}} end
return {ids, redis.call('ZMSCORE', KEYS[2], unpack(ids)), redis.call('HMGET', KEYS[3], unpack(ids))}
"""
# A flush's sightings go out in script calls of at most this many products.
MAX_SIGHTINGS_PER_SCRIPT = 100


class Product(msgspec.Struct, omit_defaults=True, kw_only=True):
    id: str
    title: str = ""
    url: str = ""
    image_url: str = ""
    price: float | None = None
    sale_price: float | None = None
    currency: str = ""
    category: str = ""
    brand: str = ""
    availability: str = "in_stock"
    attributes: dict[str, str] = {}
    # False while the product is known only from events; the next import completes it.
    imported: bool = False
    removed: bool = False

    @property
    def recommendable(self) -> bool:
        return not self.removed and self.availability != "out_of_stock" and bool(self.title and self.url)

    @property
    def current_price(self) -> float | None:
        return self.sale_price if self.sale_price is not None else self.price


_encoder = msgspec.msgpack.Encoder()
_json = msgspec.json.Encoder()
_decoder = msgspec.msgpack.Decoder(Product)


# An absolute http(s) URL with a plain host name: what urljoin and urlsplit would accept as it is.
_PLAIN_HTTP = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]*)?(?:[/?#][^\t\r\n]*)?\Z")


def http_url(url: str, base: str = "") -> str:
    """The URL made absolute against base, or "" unless it is http(s): nothing else is ever rendered."""
    url = url.strip()
    # An absolute http(s) URL with no dot segment is what urljoin would give back: skip its cost.
    plain = url.startswith(("https://", "http://")) and "/." not in url
    if plain and _PLAIN_HTTP.match(url):
        return url
    absolute = urljoin(base, url) if base and not plain else url
    parts = urlsplit(absolute)
    return absolute if parts.scheme in ("http", "https") and parts.netloc else ""


def from_row(row: p.CatalogRow, currency: str) -> Product:
    return Product(
        id=row.id,
        title=row.title,
        url=row.url or "",
        image_url=row.image_url or "",
        price=row.price,
        sale_price=row.sale_price,
        currency=row.currency or currency,
        category=row.category,
        brand=row.brand,
        availability=row.availability,
        attributes=dict(row.attributes),
        imported=True,
    )


def seen_in(props: p.ProductProps, page_url: str, currency: str) -> Product:
    """The minimal record a product_view makes of a product the catalog does not know."""
    return Product(
        id=props.id,
        title=props.title or props.name,
        # A product_view is sent from the product's own page.
        url=http_url(props.url or page_url, page_url),
        image_url=http_url(props.image_url, page_url) if props.image_url else "",
        price=props.price or None,
        sale_price=props.sale_price,
        currency=props.currency or currency,
        category=props.category,
        brand=props.brand,
        availability=props.availability or "in_stock",
    )


def decoded(records: Mapping[str, bytes]) -> dict[str, Product]:
    """Products from their stored records (id → msgpack)."""
    return {item: _decoder.decode(raw) for item, raw in records.items()}


def decode(record: bytes) -> Product:
    return _decoder.decode(record)


def _bytes(raw: object) -> bytes:
    return raw if isinstance(raw, bytes) else str(raw).encode()


def catalog_key(site: str) -> str:
    return f"st:{{{site}}}:p"


def category_key(site: str, category: str) -> str:
    return f"st:{{{site}}}:pc:{category}"


class Catalog:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def get(self, site: str, ids: Sequence[str]) -> dict[str, Product]:
        return decoded(await self.raw(site, ids))

    async def raw(self, site: str, ids: Sequence[str]) -> dict[str, bytes]:
        """The stored records (msgpack) of those of the ids that have one."""
        if not ids:
            return {}
        raws = await self.redis.hmget(catalog_key(site), list(ids))
        return {item: _bytes(raw) for item, raw in zip(ids, raws, strict=True) if raw}

    async def size(self, site: str) -> int:
        return int(await self.redis.hlen(catalog_key(site)))

    async def upsert(self, site: str, products: Sequence[Product]) -> None:
        """Writes the products whole (an import is the truth) and moves them between category indexes."""
        old = await self.get(site, [product.id for product in products])
        async with self.redis.pipeline(transaction=True) as pipe:
            for product in products:
                before = old.get(product.id)
                if before is not None and before.category and before.category != product.category:
                    pipe.zrem(category_key(site, before.category), product.id)
                pipe.hset(catalog_key(site), product.id, _encoder.encode(product))
                if product.category:
                    pipe.zadd(category_key(site, product.category), {product.id: product.current_price or 0})
            await pipe.execute()

    async def remove(self, site: str, ids: Iterable[str]) -> None:
        """Leaves tombstones: a removed product is never recommended again, until an import brings it."""
        ids = list(ids)
        old = await self.get(site, ids)
        async with self.redis.pipeline(transaction=True) as pipe:
            for item in ids:
                before = old.get(item)
                if before is not None and before.category:
                    pipe.zrem(category_key(site, before.category), item)
                pipe.hset(catalog_key(site), item, _encoder.encode(Product(id=item, removed=True)))
            await pipe.execute()

    def sighting_calls(self, site: str, products: Sequence[Product]) -> list[Call]:
        """Records products seen in events, those not known yet: script calls of at most
        MAX_SIGHTINGS_PER_SCRIPT products, each for a round trip of its own; EVAL, not a registered script
        (see recs_store.SignalStore)."""
        calls: list[Call] = []
        for start in range(0, len(products), MAX_SIGHTINGS_PER_SCRIPT):
            keys = [catalog_key(site)]
            indexes: dict[str, int] = {}
            placed: list[tuple[int, str]] = []
            args: list[str | bytes] = []
            for product in products[start : start + MAX_SIGHTINGS_PER_SCRIPT]:
                if product.category:
                    index = indexes.get(product.category)
                    if index is None:
                        keys.append(category_key(site, product.category))
                        index = indexes[product.category] = len(keys)
                    placed.append((index, repr(product.current_price or 0)))
                else:
                    placed.append((0, ""))
                args += [product.id, _encoder.encode(product)]
            calls.append(
                partial(self.redis.eval, _SIGHT, len(keys), *keys, MAX_PRODUCTS, _json.encode(placed), *args)
            )
        return calls

    async def in_category(
        self, site: str, category: str, low: float, high: float, limit: int, scored_by: str
    ) -> tuple[dict[str, float], dict[str, bytes]]:
        """The first `limit` products of the category priced from low to high, in price order, each with
        its score in the sorted set `scored_by` (0 if none); and the records of those that have one."""
        keys = (category_key(site, category), scored_by, catalog_key(site))
        ids, scores, raws = await self.redis.eval(_IN_BAND, 3, *keys, repr(low), repr(high), limit)
        members = [_bytes(item).decode() for item in ids]
        return (
            {item: float(score or 0) for item, score in zip(members, scores, strict=True)},
            {item: _bytes(raw) for item, raw in zip(members, raws, strict=True) if raw},
        )
