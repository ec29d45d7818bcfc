"""Rate limits on /v1/events: batches per fixed window from one visitor and from one client IP.

The counters live in Redis so every server process shares them: INCR and EXPIRE per counter, all in one
pipeline. A visitor's counter shares the visitor's hash tag; an IP's counter is site-wide.
"""

from __future__ import annotations

import ipaddress

import redis.asyncio as aioredis

from server.state import site_key, visitor_key


def client_group(ip: str) -> str:
    """The unit an IP limit counts: the address itself for IPv4, its /64 for IPv6, since one home or phone
    gets a whole /64 and can pick a fresh address for each request."""
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
    def __init__(self, redis: aioredis.Redis, per_visitor: int, per_ip: int, window_s: int) -> None:
        self.redis = redis
        self.per_visitor = per_visitor
        self.per_ip = per_ip
        self.window_s = window_s

    async def wait_s(self, site: str, visitor: str, ip: str, now_ms: int) -> int:
        """Counts a batch; 0 when it is within the limits, else the seconds until the window ends."""
        window_ms = self.window_s * 1000
        window = now_ms // window_ms
        counters = []
        if self.per_visitor:
            counters.append((visitor_key(site, visitor, f"rl:{window}"), self.per_visitor))
        if self.per_ip and ip:
            counters.append((site_key(site, f"rl:{client_group(ip)}:{window}"), self.per_ip))
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
