"""The event path: a decoded batch in, the visitor's state updated, an answer out."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from server import protocol as p
from server.actions import Renderer
from server.engine import Engine
from server.settings import Settings
from server.sites import Site
from server.state import VisitorStore
from server.visitor import Context, VisitorState, apply_events


class Refused(Exception):
    """A batch that is refused as a whole, before anything is written."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    sites: dict[str, Site]
    store: VisitorStore
    engine: Engine
    renderer: Renderer
    clock: Callable[[], float] = time.time

    def site_for(self, key: str, origin: str | None) -> Site:
        site = self.sites.get(key)
        if site is None:
            raise Refused(404, f"unknown site {key!r}")
        if not site.allows_origin(origin, self.settings.allowed_origins):
            raise Refused(403, f"origin {origin!r} is not allowed for site {key!r}")
        return site

    async def ingest(self, batch: p.EventBatch, origin: str | None, user_agent: str) -> p.Answer:
        site = self.site_for(batch.site, origin)
        if len(batch.events) > p.MAX_EVENTS_PER_BATCH:
            raise Refused(413, f"a batch carries at most {p.MAX_EVENTS_PER_BATCH} events")
        now_ms = int(self.clock() * 1000)
        ctx = Context(
            site=site,
            session_id=batch.session,
            now_ms=now_ms,
            session_timeout_ms=self.settings.session_timeout_s * 1000,
            user_agent=user_agent,
            action_ids=self.engine.rule_ids,
        )

        def change(state: VisitorState) -> list[p.Event]:
            return apply_events(state, batch, ctx)

        state, applied = await self.store.update(site.key, batch.visitor, change)
        decisions = self.engine.decide(state, applied, site, now_ms)
        return p.Answer(actions=self.renderer.render(decisions, site, now_ms))
