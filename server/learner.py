"""`storetag worker`, with learning in workers (settings.recs_learn_in_workers): writes what the servers
learned from events and queued (server/recs.py), so that a server's share of learning is one command per
flush."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from server.recs import Recommender
from server.state import UNAVAILABLE

log = logging.getLogger("storetag.learner")

# An idle learner looks for queued flushes this often: lists follow traffic this much later than with
# servers writing their own.
POLL_S = 0.25


class Learner:
    def __init__(self, recs: Recommender, sites: Iterable[str]) -> None:
        self.recs = recs
        self.sites = list(sites)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                written = await self.run_once()
            except UNAVAILABLE as exc:  # what is still queued waits for Redis to be back
                log.warning("learner: redis unavailable (%s); trying again", exc)
                written = 0
            if not written:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), POLL_S)

    async def run_once(self) -> int:
        """One pass over every site, saying it writes the site's queue and writing a queued flush of each
        that has one; how many were written."""
        written = 0
        for site in self.sites:
            await self.recs.attend(site)
            written += await self.recs.write_queued(site)
        return written
