"""Rate limits on /v1/events: batches per fixed window from one visitor and from one client IP.

The counters live in Redis so every server process shares them: INCR and EXPIRE per counter, all in one
pipeline. A visitor's counter shares the visitor's hash tag; an IP's counter is site-wide.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from server.state import RateCounter, site_key, visitor_key


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, per_visitor: int, per_ip: int, window_s: int) -> None:
        self.redis = redis
        self.per_visitor = per_visitor
        self.per_ip = per_ip
        self.window_s = window_s

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
        return await self.wait_s(site, "", ip, now_ms, per_visitor=False)

    async def wait_s(self, site: str, visitor: str, ip: str, now_ms: int, per_visitor: bool = True) -> int:
        """Counts a batch; 0 when it is within the limits, else the seconds until the window ends."""
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
