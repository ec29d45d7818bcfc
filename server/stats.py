"""Honest numbers per rule and day: offered, lost to a higher priority, shown, clicked, closed, redeemed,
revenue. One hash per site and day, kept for 400 days, written behind the answers."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from server.state import site_key
from server.write_behind import Flush, WriteBehind

KEEP_S = 400 * 86400


def _day(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d")


class RuleStats:
    """Counts are merged in process memory and written behind (server/write_behind.py): a read through
    `totals` flushes this process's first."""

    def __init__(self, redis: aioredis.Redis, behind: WriteBehind | None = None) -> None:
        self.redis = redis
        self.behind = behind or WriteBehind(redis, 0)
        self.behind.add_source(self)
        # Day key → "rule:field" → increment, and → "rule:revenue" → amount.
        self._counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._revenue: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))

    async def record(
        self, site: str, now_ms: int, counts: Counter[str], revenue: Mapping[str, float]
    ) -> None:
        """counts: "rule:field" → increment; revenue: rule → amount."""
        if not counts and not revenue:
            return
        key = site_key(site, f"stats:{_day(now_ms)}")
        if counts:
            self._counts[key].update(counts)
        for rule_id, total in revenue.items():
            self._revenue[key][f"{rule_id}:revenue"] += total
        await self.behind.written()

    def drain(self, flush: Flush) -> int:
        pipe = flush.pipe
        counts, self._counts = self._counts, defaultdict(Counter)
        revenue, self._revenue = self._revenue, defaultdict(lambda: defaultdict(float))
        queued = 0
        for key in counts.keys() | revenue.keys():
            for name, amount in counts.get(key, Counter()).items():
                pipe.hincrby(key, name, amount)
            for name, total in revenue.get(key, {}).items():
                pipe.hincrbyfloat(key, name, total)
            pipe.expire(key, KEEP_S)
            queued += len(counts.get(key, ())) + len(revenue.get(key, ())) + 1
        return queued

    def took(self, replies: Sequence[object]) -> None:
        pass

    async def totals(self, site: str, days: int, now_ms: int | None = None) -> dict[str, dict[str, float]]:
        """rule → field → total over the last `days` days (today included)."""
        await self.behind.flush()
        today = datetime.fromtimestamp((now_ms or time.time() * 1000) / 1000, UTC)
        keys = [site_key(site, f"stats:{(today - timedelta(days=n)):%Y-%m-%d}") for n in range(days)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(key)
            per_day = await pipe.execute()
        totals: dict[str, dict[str, float]] = {}
        for day in per_day:
            for name, value in day.items():
                rule_id, _, field = name.decode().rpartition(":")
                fields = totals.setdefault(rule_id, {})
                fields[field] = round(fields.get(field, 0) + float(value), 2)
        return totals
