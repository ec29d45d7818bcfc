"""Write-behind: writes the answer does not wait for (rule stats, what recommendations learn, per-IP rate
counters), merged in process memory and sent to Redis every `interval_s`.

Each source keeps its own merged buffer (a thousand batches that each count one view of a product become
one increment by a thousand) and queues it into the flush's pipeline when asked. The flush runs in the
background, at most `interval_s` after the first write it carries, and once more when the app shuts down
(`close`). What a process has not flushed yet is lost if it dies without shutting down (SIGKILL, a crash):
at most `interval_s` of its writes; a flush that Redis fails is logged and dropped, not retried (a retry
after a timeout could count twice). With `interval_s` 0 every write is sent before the request answers,
as the tests and the embedded demo store want.

A flush's small writes go in one pipeline; its script calls that each keep Redis busy for up to a
millisecond (what recommendations learn) go one round trip each after it, so that the answers' own
commands run between them instead of queueing behind the whole flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

log = logging.getLogger("storetag.write_behind")


# A call that costs Redis up to about a millisecond, sent in a round trip of its own.
Call = Callable[[], Awaitable[object]]


@dataclass
class Flush:
    """What one flush sends: `pipe`, one round trip for the small writes, then each of `apart`."""

    pipe: Pipeline
    apart: list[Call] = field(default_factory=list)


class Buffered(Protocol):
    def drain(self, flush: Flush) -> int:
        """Queues what is buffered into the flush, empties the buffer; returns the commands queued into its
        pipeline."""

    def took(self, replies: Sequence[Any]) -> None:
        """The replies to this source's commands of a flush that went through."""


class WriteBehind:
    def __init__(self, redis: aioredis.Redis, interval_s: float) -> None:
        self.redis = redis
        self.interval_s = interval_s
        self.sources: list[Buffered] = []
        self._timer: asyncio.Task[None] | None = None
        self._sleeping = False
        # Set while a flush is under way: a write made meanwhile goes out with the next one.
        self._flushing: asyncio.Future[None] | None = None

    def add_source(self, source: Buffered) -> None:
        self.sources.append(source)

    async def written(self) -> None:
        """Called after buffering a write: with no interval, returns once it is in Redis; else makes sure
        a flush is due."""
        if self.interval_s <= 0:
            await self.flush()
        elif self._timer is None or self._timer.done():
            self._timer = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        self._sleeping = True
        try:
            await asyncio.sleep(self.interval_s)
        finally:
            self._sleeping = False
        try:
            await self.flush()
        except Exception as exc:  # Redis is down or slow: the batches answer degraded meanwhile
            log.warning("write-behind flush failed, its writes are dropped: %r", exc)

    async def flush(self) -> None:
        """Sends everything buffered (after any flush under way)."""
        while self._flushing is not None:
            await asyncio.shield(self._flushing)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flushing = done
        try:
            await self._send()
        finally:
            if self._flushing is done:
                self._flushing = None
            done.set_result(None)

    async def _send(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            flush = Flush(pipe)
            counts = [source.drain(flush) for source in self.sources]
            replies = await pipe.execute() if any(counts) else []
        start = 0
        for source, count in zip(self.sources, counts, strict=True):
            if count:
                source.took(replies[start : start + count])
            start += count
        for send in flush.apart:
            await send()

    async def close(self) -> None:
        """At shutdown: the last flush, now."""
        timer = self._timer
        if timer is not None and not timer.done():
            if self._sleeping:
                timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        await self.flush()
