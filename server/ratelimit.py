"""Rate limits on /v1/events: batches per fixed window from one visitor and from one client IP.

The counters live in Redis so every server process shares them. A visitor's counter shares the visitor's
hash tag and is counted inside the visitor's state update (server/state.py), at no extra round trip. An
IP's counter is site-wide: each process counts an IP's batches in memory at once and adds them to Redis
with the writes behind the answers (server/write_behind.py), learning the total of all processes in
return; so with N processes a client may pass its IP limit by what the other processes let through within
one write-behind interval. Without an interval, INCR and EXPIRE per counter go in one pipeline per batch.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import redis.asyncio as aioredis

from server.state import RateCounter, site_key, visitor_key
from server.write_behind import Flush, WriteBehind

# (site, ip, window)
IpWindow = tuple[str, str, int]


@lru_cache(maxsize=4096)
def client_group(ip: str) -> str:
    """The unit an IP limit counts: the address itself for IPv4, its /64 for IPv6, since one home or phone
    gets a whole /64 and can pick a fresh address for each request. Cached: the same clients come back."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return ip


class RateLimiter:
    def __init__(
        self,
        redis: aioredis.Redis,
        per_visitor: int,
        per_ip: int,
        window_s: int,
        behind: WriteBehind | None = None,
    ) -> None:
        self.redis = redis
        self.per_visitor = per_visitor
        self.per_ip = per_ip
        self.window_s = window_s
        self.behind = behind if behind is not None and behind.interval_s > 0 else None
        if self.behind is not None:
            self.behind.add_source(self)
        # Batches this process let through: not yet sent, being sent; and the total Redis last answered.
        self._unsent: Counter[IpWindow] = Counter()
        self._sending: Counter[IpWindow] = Counter()
        self._total: dict[IpWindow, int] = {}

    def visitor_counter(self, site: str, visitor: str, now_ms: int) -> RateCounter | None:
        """The visitor's counter for this window, for the state update to count atomically (no round trip
        of its own); None when the limit is off."""
        if not self.per_visitor:
            return None
        window = now_ms // (self.window_s * 1000)
        return RateCounter(visitor_key(site, visitor, f"rl:{window}"), self.per_visitor, self.window_s)

    def retry_after_s(self, now_ms: int) -> int:
        """Seconds until the current window ends."""
        window_ms = self.window_s * 1000
        return -(-((now_ms // window_ms + 1) * window_ms - now_ms) // 1000)

    async def ip_wait_s(self, site: str, ip: str, now_ms: int) -> int:
        """Counts a batch from this IP: 0 when within the limit, else the seconds until the window ends."""
        ip = client_group(ip)
        if self.behind is None:
            return await self.wait_s(site, "", ip, now_ms, per_visitor=False)
        if not (self.per_ip and ip):
            return 0
        counter = (site, ip, now_ms // (self.window_s * 1000))
        if self._total.get(counter, 0) + self._sending[counter] + self._unsent[counter] >= self.per_ip:
            return self.retry_after_s(now_ms)
        self._unsent[counter] += 1
        await self.behind.written()
        return 0

    def drain(self, flush: Flush) -> int:
        self._sending, self._unsent = self._unsent, Counter()
        for (site, ip, window), count in self._sending.items():
            flush.pipe.incrby(site_key(site, f"rl:{ip}:{window}"), count)
            flush.pipe.expire(site_key(site, f"rl:{ip}:{window}"), self.window_s)
        return 2 * len(self._sending)

    def took(self, replies: Sequence[object]) -> None:
        sent, self._sending = self._sending, Counter()
        latest = max(window for _, _, window in sent)
        self._total = {counter: total for counter, total in self._total.items() if counter[2] >= latest - 1}
        for counter, total in zip(sent, replies[::2], strict=True):
            self._total[counter] = int(str(total))

    async def wait_s(self, site: str, visitor: str, ip: str, now_ms: int, per_visitor: bool = True) -> int:
        """Counts a batch in Redis at once; 0 when it is within the limits, else the seconds until the
        window ends."""
        window_ms = self.window_s * 1000
        window = now_ms // window_ms
        counters = []
        if self.per_visitor and per_visitor:
            counters.append((visitor_key(site, visitor, f"rl:{window}"), self.per_visitor))
        if self.per_ip and ip:
            counters.append((site_key(site, f"rl:{ip}:{window}"), self.per_ip))
        if not counters:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, _ in counters:
                pipe.incr(key)
                pipe.expire(key, self.window_s)
            replies = await pipe.execute()
        if all(count <= limit for count, (_, limit) in zip(replies[::2], counters, strict=True)):
            return 0
        return -(-((window + 1) * window_ms - now_ms) // 1000)
