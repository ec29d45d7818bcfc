"""The push queue in Redis: scheduled jobs, the stream workers read, and dead letters; all of a site's
keys share the hash tag `{SITE}`, so one Lua script moves due jobs from the schedule into the stream.

    st:{SITE}:push:due      sorted set: job id → when it is due (epoch ms)
    st:{SITE}:push:jobs     hash: job id → the job (msgpack), while it waits in the schedule
    st:{SITE}:push:stream   stream of jobs (field `job`) and audiences to expand (field `fanout`), read by
                            the consumer group `workers`
    st:{SITE}:push:dead     stream of jobs given up, with the reason

A job id names what a later job replaces: `RULE:VISITOR` for a rule's push (one pending per rule and
visitor; a newer decision re-schedules it), a random id otherwise.
"""

from __future__ import annotations

from typing import Any

import msgspec
import redis.asyncio as aioredis
import redis.exceptions

from server import protocol as p
from server.state import site_key

GROUP = "workers"
KEEP_S = 30 * 86400
DEAD_KEPT = 10_000
STREAM_KEPT = 1_000_000


class PushJob(msgspec.Struct, omit_defaults=True, kw_only=True):
    """One notification to one visitor's devices (and, when identified, their customer's), or, for a
    retry, to one device."""

    notification: p.Notification
    visitor: str
    customer: str = ""
    ttl: int = 86400
    urgency: str = "normal"
    topic: str = ""
    # Whether it reaches the person: every device of the customer the visitor is identified as when it is
    # sent. A push to a segment or to all subscribers goes to each subscriber's own devices instead.
    person: bool = True
    # A retry: the one device it is for, and the attempt it will be (the first is 1).
    device: str = ""
    attempt: int = 1


class FanOut(msgspec.Struct, omit_defaults=True, kw_only=True):
    """An admin push to a segment (or, with none named, every subscriber) that the workers expand page by
    page into one job per subscriber; `cursor` is where the scan of the site's subscriber index goes on."""

    notification: p.Notification
    segment: str = ""
    ttl: int = 86400
    urgency: str = "normal"
    topic: str = ""
    cursor: int = 0


job_encoder = msgspec.msgpack.Encoder()
job_decoder = msgspec.msgpack.Decoder(PushJob)
fanout_decoder = msgspec.msgpack.Decoder(FanOut)

# KEYS: due set, job bodies, stream; ARGV: now (ms), most jobs to move, the stream's rough cap, its TTL.
_MOVE_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  local job = redis.call('HGET', KEYS[2], id)
  if job then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'job', job)
  end
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
if #ids > 0 then redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4])) end
return #ids
"""


def _keys(site: str) -> list[str]:
    return [site_key(site, part) for part in ("push:due", "push:jobs", "push:stream")]


class PushQueue:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._move_due = redis.register_script(_MOVE_DUE)

    async def schedule(self, site: str, jobs: dict[str, tuple[PushJob, int]]) -> None:
        """Job id → (job, due epoch ms); an id already scheduled is replaced."""
        due, bodies, _ = _keys(site)
        async with self.redis.pipeline(transaction=True) as pipe:
            for job_id, (job, due_ms) in jobs.items():
                pipe.hset(bodies, job_id, job_encoder.encode(job))
                pipe.zadd(due, {job_id: due_ms})
            pipe.expire(due, KEEP_S)
            pipe.expire(bodies, KEEP_S)
            await pipe.execute()

    async def cancel(self, site: str, job_ids: list[str]) -> None:
        due, bodies, _ = _keys(site)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(due, *job_ids)
            pipe.hdel(bodies, *job_ids)
            await pipe.execute()

    async def scheduled(self, site: str) -> dict[str, tuple[PushJob, int]]:
        """Everything waiting in the schedule: job id → (job, due)."""
        due, bodies, _ = _keys(site)
        times: Any = await self.redis.zrange(due, 0, -1, withscores=True)
        jobs: Any = await self.redis.hgetall(bodies)
        return {
            job_id.decode(): (job_decoder.decode(jobs[job_id]), int(when))
            for job_id, when in times
            if job_id in jobs
        }

    async def enqueue(self, site: str, jobs: list[PushJob]) -> None:
        """Jobs for the workers now."""
        stream = _keys(site)[2]
        async with self.redis.pipeline(transaction=False) as pipe:
            for job in jobs:
                pipe.xadd(stream, {"job": job_encoder.encode(job)}, maxlen=STREAM_KEPT, approximate=True)
            pipe.expire(stream, KEEP_S)
            await pipe.execute()

    async def enqueue_fanout(self, site: str, fanout: FanOut) -> None:
        stream = _keys(site)[2]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(stream, {"fanout": job_encoder.encode(fanout)}, maxlen=STREAM_KEPT, approximate=True)
            pipe.expire(stream, KEEP_S)
            await pipe.execute()

    async def move_due(self, site: str, now_ms: int, limit: int = 1000) -> int:
        moved = await self._move_due(keys=_keys(site), args=[now_ms, limit, STREAM_KEPT, KEEP_S])
        return int(moved)

    async def ensure_group(self, site: str) -> None:
        try:
            await self.redis.xgroup_create(_keys(site)[2], GROUP, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        await self.redis.expire(_keys(site)[2], KEEP_S)

    async def read(self, site: str, consumer: str, count: int) -> list[tuple[str, PushJob | FanOut]]:
        answer: Any = await self.redis.xreadgroup(GROUP, consumer, {_keys(site)[2]: ">"}, count=count)
        return [_entry(entry_id, fields) for _, entries in answer for entry_id, fields in entries]

    async def claim(
        self, site: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[tuple[str, PushJob | FanOut]]:
        """Jobs another worker took and never acknowledged (it died): they are this worker's now."""
        answer: Any = await self.redis.xautoclaim(
            _keys(site)[2], GROUP, consumer, min_idle_ms, start_id="0-0", count=count
        )
        return [_entry(entry_id, fields) for entry_id, fields in answer[1] if fields]

    async def done(self, site: str, entry_ids: list[str]) -> None:
        if entry_ids:
            stream = _keys(site)[2]
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xack(stream, GROUP, *entry_ids)
                pipe.xdel(stream, *entry_ids)
                await pipe.execute()

    async def bury(self, site: str, letters: list[p.DeadLetter]) -> None:
        key = site_key(site, "push:dead")
        async with self.redis.pipeline(transaction=False) as pipe:
            for letter in letters:
                pipe.xadd(key, {"letter": msgspec.json.encode(letter)}, maxlen=DEAD_KEPT, approximate=True)
            pipe.expire(key, KEEP_S)
            await pipe.execute()

    async def dead_letters(self, site: str, count: int) -> list[p.DeadLetter]:
        entries: Any = await self.redis.xrevrange(site_key(site, "push:dead"), count=count)
        return [msgspec.json.decode(fields[b"letter"], type=p.DeadLetter) for _, fields in entries]


def _entry(entry_id: bytes, fields: dict[bytes, bytes]) -> tuple[str, PushJob | FanOut]:
    if b"fanout" in fields:
        return entry_id.decode(), fanout_decoder.decode(fields[b"fanout"])
    return entry_id.decode(), job_decoder.decode(fields[b"job"])
