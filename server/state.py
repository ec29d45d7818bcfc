"""The one module that talks to Redis: key layout, atomic visitor updates, the embedded store.

A visitor's whole state is one msgpack value under a key hash-tagged with site and visitor, so it lives in
one Redis Cluster slot. Updates are optimistic: apply in Python to the value this process last wrote for
the visitor (or none), and write back with a compare-and-set script. When that guess is stale (another tab
on another server, a first request here) the script answers with the current value and the update is retried
on it. So a visitor's usual request costs one round trip, and nothing is ever lost.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple, TypeVar, cast

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from server.visitor import VisitorState, state_decoder, state_encoder

log = logging.getLogger("storetag.state")

T = TypeVar("T")

MAX_ATTEMPTS = 50
# Values this process last wrote, as guesses for the next compare-and-set: a guess is never trusted.
LAST_WRITTEN_KEPT = 20_000

# KEYS[1] state key; ARGV[1] the value read ("" when there was none), ARGV[2] the new value, ARGV[3] TTL s.
# With KEYS[2], a rate counter of the visitor's (same hash tag), counted first: ARGV[4] its limit, ARGV[5]
# its TTL s. Returns 1 when written, 0 when the counter is past its limit (nothing written), else the
# current value so the caller can retry without another round trip.
_COMPARE_AND_SET = """
if KEYS[2] then
  local count = redis.call('INCR', KEYS[2])
  if count == 1 then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5])) end
  if count > tonumber(ARGV[4]) then return 0 end
end
local current = redis.call('GET', KEYS[1])
if (current == false and ARGV[1] == '') or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
  return 1
end
return current or ''
"""


class ConflictError(RuntimeError):
    pass


class RateCounter(NamedTuple):
    """A counter of the visitor's (sharing its hash tag) that an update counts first, atomically."""

    key: str
    limit: int
    ttl_s: int


class OverLimit(Exception):
    """The update's rate counter is past its limit: nothing was written."""


# What a call to the store raises when Redis cannot answer. A cluster client that reaches no node raises
# RedisClusterException, which is not a RedisError.
UNAVAILABLE = (redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError)


def visitor_key(site: str, visitor: str, part: str) -> str:
    return f"st:{{{site}:{visitor}}}:{part}"


def site_key(site: str, part: str) -> str:
    return f"st:{{{site}}}:{part}"


# REDIS_URL schemes that name a Redis Cluster (any of its nodes) → the scheme of the node URL.
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def connect(redis_url: str | None, timeout_s: float = 2.0) -> aioredis.Redis:
    if redis_url is not None:
        scheme, _, rest = redis_url.partition("://")
        if scheme in CLUSTER_SCHEMES:
            cluster = RedisCluster.from_url(
                f"{CLUSTER_SCHEMES[scheme]}://{rest}",
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
            )
            # Typed as a Redis: Storetag uses only what both answer alike (one-key commands, scripts on one
            # key, pipelines within one hash tag); tests/test_cluster.py runs the server on a real cluster.
            return cast(aioredis.Redis, cluster)
        # One immediate retry on a fresh connection, for a pooled one that died with a Redis restart; no
        # backoff and no retry after a timeout: a request never waits long on a Redis that is down.
        return aioredis.Redis.from_url(
            redis_url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)),
        )
    import fakeredis

    log.warning(
        "REDIS_URL is not set: using the EMBEDDED in-process store. State is neither shared between "
        "processes nor kept across restarts. For the demo only; set REDIS_URL in production."
    )
    client: aioredis.Redis = fakeredis.FakeAsyncRedis()
    return client


class VisitorStore:
    def __init__(self, redis: aioredis.Redis, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self._compare_and_set = redis.register_script(_COMPARE_AND_SET)
        self._last_written: OrderedDict[str, bytes] = OrderedDict()

    async def _get(self, key: str) -> bytes:
        raw = await self.redis.get(key)
        return raw if isinstance(raw, bytes) else b""

    async def load(self, site: str, visitor: str) -> VisitorState:
        raw = await self._get(visitor_key(site, visitor, "state"))
        return state_decoder.decode(raw) if raw else VisitorState()

    async def update(
        self, site: str, visitor: str, change: Callable[[VisitorState], T], counter: RateCounter | None = None
    ) -> tuple[VisitorState, T]:
        """Applies change() atomically; returns the state written and what change() returned. With a
        `counter`, counts it in the same step and raises OverLimit (writing nothing) past its limit."""
        key = visitor_key(site, visitor, "state")
        raw = self._last_written.pop(key, b"")
        for _ in range(MAX_ATTEMPTS):
            state = state_decoder.decode(raw) if raw else VisitorState()
            result = change(state)
            new = state_encoder.encode(state)
            if counter is None:
                written = await self._compare_and_set(keys=[key], args=[raw, new, self.ttl_s])
            else:
                args: list[bytes | int] = [raw, new, self.ttl_s, counter.limit, counter.ttl_s]
                written = await self._compare_and_set(keys=[key, counter.key], args=args)
                counter = None  # counted once, whatever the compare found
            if written == 1:
                self._remember(key, new)
                return state, result
            if written == 0:
                if raw:
                    self._remember(key, raw)
                raise OverLimit(key)
            raw = bytes(written)
        raise ConflictError(f"visitor state kept changing under {MAX_ATTEMPTS} attempts")

    def _remember(self, key: str, value: bytes) -> None:
        self._last_written[key] = value
        if len(self._last_written) > LAST_WRITTEN_KEPT:
            self._last_written.popitem(last=False)

    async def ping(self) -> bool:
        return bool(await self.redis.ping())
