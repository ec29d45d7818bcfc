"""What each push and each rule's pushes did: visitors it was queued for, deliveries started (one per
device), delivered (2xx), retried, failed by reason, clicked.

    st:{SITE}:push:stat:{PUSH}   hash: rule, and each count, kept 30 days
    st:{SITE}:push:rules         hash: "RULE|count" → total, kept 400 days after its last change
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import redis.asyncio as aioredis

from server import protocol as p
from server.state import site_key

PUSH_KEPT_S = 30 * 86400
RULES_KEPT_S = 400 * 86400

# KEYS: the push's hash, the rules hash; ARGV: kept seconds. A click counts only for a push this server
# sent (anyone can post an event naming any push id), against the rule the push itself names.
_CLICKED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'clicked', 1)
local rule = redis.call('HGET', KEYS[1], 'rule') or ''
redis.call('HINCRBY', KEYS[2], rule .. '|clicked', 1)
return 1
"""


def push_key(site: str, push: str) -> str:
    return site_key(site, f"push:stat:{push}")


def counts_of(fields: dict[str, int]) -> p.PushCounts:
    counts = p.PushCounts()
    for name, value in fields.items():
        if name.startswith("failed:"):
            counts.failed[name.removeprefix("failed:")] = value
        elif name in ("visitors", "sent", "delivered", "clicked", "retried"):
            setattr(counts, name, value)
    return counts


class PushStats:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._clicked = redis.register_script(_CLICKED)

    async def record(self, site: str, counts: Counter[tuple[str, str, str]]) -> None:
        """(push, rule, count name) → increment, e.g. ("a1b2", "abandoned_cart", "failed:gone")."""
        if not counts:
            return
        rules = site_key(site, "push:rules")
        async with self.redis.pipeline(transaction=False) as pipe:
            for (push, rule, name), amount in counts.items():
                key = push_key(site, push)
                pipe.hset(key, "rule", rule)
                pipe.hincrby(key, name, amount)
                pipe.expire(key, PUSH_KEPT_S)
                pipe.hincrby(rules, f"{rule}|{name}", amount)
            pipe.expire(rules, RULES_KEPT_S)
            await pipe.execute()

    async def clicked(self, site: str, push: str) -> bool:
        keys = [push_key(site, push), site_key(site, "push:rules")]
        return bool(await self._clicked(keys=keys, args=[]))

    async def of_push(self, site: str, push: str) -> p.PushStats | None:
        stored: Any = await self.redis.hgetall(push_key(site, push))
        fields = {name.decode(): value.decode() for name, value in stored.items()}
        if not fields:
            return None
        rule = fields.pop("rule", "")
        return p.PushStats(push, rule, counts_of({name: int(value) for name, value in fields.items()}))

    async def of_rules(self, site: str) -> p.PushRuleStats:
        per_rule: dict[str, dict[str, int]] = {}
        stored: Any = await self.redis.hgetall(site_key(site, "push:rules"))
        for name, value in stored.items():
            rule, _, count = name.decode().partition("|")
            per_rule.setdefault(rule, {})[count] = int(value)
        return p.PushRuleStats({rule: counts_of(fields) for rule, fields in sorted(per_rule.items())})
