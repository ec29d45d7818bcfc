"""Admin pushes to a segment or to every subscriber, expanded by the workers: one page of the site's
subscriber index at a time (ZSCAN), segments evaluated on each subscriber's state, into one job per
subscriber. A page's jobs, the audience's next page (its cursor) and the acknowledgement of this page are
written by one Lua script that first acknowledges the entry: a worker that died mid-page leaves the entry
pending and another claims it; a slow worker whose page was done meanwhile writes nothing. So no page is
skipped or queued twice (ZSCAN itself may return a subscriber twice when the index is resized meanwhile,
and misses none that stayed subscribed). The next page goes behind this page's jobs in the stream, so the
stream never holds much more than a page of one audience.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import msgspec
import redis.asyncio as aioredis

from server import protocol as p
from server.push_queue import GROUP, KEEP_S, STREAM_KEPT, FanOut, PushJob, job_encoder
from server.push_stats import PUSH_KEPT_S, push_key
from server.rules import SegmentFunction, Visit
from server.sites import Site
from server.state import site_key, visitor_key
from server.visitor import VisitorState, state_decoder

log = logging.getLogger("storetag.worker")

PAGE = 500

# KEYS: the stream, the push's stats; ARGV: group, this entry, the stream's rough cap, its TTL, the stats'
# TTL, the next page's entry ("" when this was the last), then the jobs. Answers the jobs queued, or -1
# when the entry was acknowledged already (another worker did this page).
_QUEUE_PAGE = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return -1 end
redis.call('XDEL', KEYS[1], ARGV[2])
for i = 7, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'job', ARGV[i])
end
if ARGV[6] ~= '' then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'fanout', ARGV[6])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('HSETNX', KEYS[2], 'rule', '')
redis.call('HINCRBY', KEYS[2], 'visitors', #ARGV - 6)
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
return #ARGV - 6
"""


class FanOuts:
    def __init__(
        self, redis: aioredis.Redis, segments: Mapping[str, SegmentFunction], page: int = PAGE
    ) -> None:
        self.redis = redis
        self.segments = segments
        self.page = page
        self._queue_page = redis.register_script(_QUEUE_PAGE)

    async def expand(self, site: Site, entry_id: str, fanout: FanOut, now_ms: int) -> int:
        """Queues one page of the audience's jobs; the number queued, or -1 if another worker did."""
        index = site_key(site.key, "push:subscribers")
        answer: Any = await self.redis.zscan(index, fanout.cursor, count=self.page)
        cursor, found = answer
        visitors = [visitor.decode() for visitor, _ in found]
        if fanout.segment:
            predicate = self.segments.get(fanout.segment)
            if predicate is None:
                push = fanout.notification.push
                log.error("push %s: no segment named %r in this worker's rules", push, fanout.segment)
                visitors, cursor = [], 0
            else:
                visitors = await self._in_segment(site, visitors, predicate, now_ms)
        jobs = [
            job_encoder.encode(
                PushJob(
                    notification=msgspec.structs.replace(fanout.notification, visitor=visitor),
                    visitor=visitor,
                    ttl=fanout.ttl,
                    urgency=fanout.urgency,
                    topic=fanout.topic,
                    person=False,
                )
            )
            for visitor in visitors
        ]
        following = job_encoder.encode(msgspec.structs.replace(fanout, cursor=int(cursor))) if cursor else b""
        keys = [site_key(site.key, "push:stream"), push_key(site.key, fanout.notification.push)]
        args: list[bytes | str | int] = [GROUP, entry_id, STREAM_KEPT, KEEP_S, PUSH_KEPT_S, following, *jobs]
        return int(await self._queue_page(keys=keys, args=args))

    async def _in_segment(
        self, site: Site, visitors: list[str], predicate: SegmentFunction, now_ms: int
    ) -> list[str]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for visitor in visitors:
                pipe.get(visitor_key(site.key, visitor, "state"))
            states = await pipe.execute()
        chosen = []
        for visitor, raw in zip(visitors, states, strict=True):
            state = state_decoder.decode(raw) if raw else VisitorState()
            if predicate(Visit(state, p.PageView(), site, now_ms, self.segments)):
                chosen.append(visitor)
        return chosen
