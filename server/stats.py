"""Honest numbers per rule and day: offered, lost to a higher priority, shown, clicked, closed, redeemed,
revenue. One hash per site and day, kept for 400 days."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from server.state import site_key

KEEP_S = 400 * 86400


def _day(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d")


class RuleStats:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def record(
        self, site: str, now_ms: int, counts: Counter[str], revenue: Mapping[str, float]
    ) -> None:
        """counts: "rule:field" → increment; revenue: rule → amount."""
        if not counts and not revenue:
            return
        key = site_key(site, f"stats:{_day(now_ms)}")
        async with self.redis.pipeline(transaction=False) as pipe:
            for name, amount in counts.items():
                pipe.hincrby(key, name, amount)
            for rule_id, total in revenue.items():
                pipe.hincrbyfloat(key, f"{rule_id}:revenue", total)
            pipe.expire(key, KEEP_S)
            await pipe.execute()

    async def totals(self, site: str, days: int, now_ms: int | None = None) -> dict[str, dict[str, float]]:
        """rule → field → total over the last `days` days (today included)."""
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
