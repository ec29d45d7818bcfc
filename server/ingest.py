"""The event path: a decoded batch in, the visitor's state updated, an answer out."""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis

from server import protocol as p
from server.actions import Renderer, template_environment
from server.breaker import Breaker
from server.catalog import Product
from server.coupons import Coupons, Issued
from server.engine import Decision, Decisions, Engine, load_rules
from server.push_schedule import PushScheduler
from server.ratelimit import RateLimiter
from server.recs import Recommender
from server.rules import Offer, Recs
from server.settings import Settings
from server.sites import Site
from server.state import OverLimit, VisitorStore
from server.stats import RuleStats
from server.visitor import Context, VisitorState, apply_events
from server.write_behind import WriteBehind

log = logging.getLogger("storetag.ingest")


class Refused(Exception):
    """A batch that is refused as a whole, before anything is written."""

    def __init__(self, status: int, message: str, retry_after_s: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        # For a 429: when the client may try again.
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    sites: dict[str, Site]
    store: VisitorStore
    engine: Engine
    renderer: Renderer
    coupons: Coupons
    stats: RuleStats
    limiter: RateLimiter
    recs: Recommender
    push: PushScheduler
    behind: WriteBehind
    clock: Callable[[], float] = time.time
    breaker: Breaker = field(default_factory=Breaker)

    async def close(self) -> None:
        """At shutdown: what is written behind goes out."""
        await self.behind.close()

    def site_for(self, key: str, origin: str | None) -> Site:
        site = self.sites.get(key)
        if site is None:
            raise Refused(404, f"unknown site {key!r}")
        if not site.allows_origin(origin, self.settings.allowed_origins):
            raise Refused(403, f"origin {origin!r} is not allowed for site {key!r}")
        return site

    async def ingest(
        self,
        batch: p.EventBatch,
        origin: str | None,
        user_agent: str = "",
        accept_language: str = "",
        country: str = "",
        client_ip: str = "",
    ) -> p.Answer:
        site = self.site_for(batch.site, origin)
        if len(batch.events) > p.MAX_EVENTS_PER_BATCH:
            raise Refused(413, f"a batch carries at most {p.MAX_EVENTS_PER_BATCH} events")
        now_ms = int(self.clock() * 1000)
        if wait_s := await self.limiter.ip_wait_s(site.key, client_ip, now_ms):
            raise Refused(429, f"too many batches; retry in {wait_s} s", retry_after_s=wait_s)
        ctx = Context(
            site=site,
            session_id=batch.session,
            now_ms=now_ms,
            session_timeout_ms=self.settings.session_timeout_s * 1000,
            user_agent=user_agent,
            accept_language=accept_language,
            country=country,
            action_ids=self.engine.rule_ids,
        )

        def change(state: VisitorState) -> tuple[list[p.Event], list[str], Decisions, list[Issued]]:
            # Deciding is pure, so it runs with the events, retried with them on a conflict; the code an
            # offer leading its slot will show is signed into the same write. What the page may hold armed
            # is what it says, or else what this session's answers may have armed.
            applied = apply_events(state, batch, ctx)
            armed = state.session.armed if batch.armed is None else batch.armed
            decisions = self.engine.decide(state, applied, site, now_ms, armed)
            state.session.armed = decisions.armed_after(state.session.armed)[-p.MAX_ARMED :]
            leading = [(slot[0].rule.id, slot[0].action) for slot in decisions.slots]
            offers = [(rule_id, action) for rule_id, action in leading if isinstance(action, Offer)]
            return applied, armed, decisions, self.coupons.sign_in_state(site, state, offers, now_ms)

        try:
            state, (applied, armed, decisions, fresh_codes) = await self.store.update(
                site.key, batch.visitor, change, self.limiter.visitor_counter(site.key, batch.visitor, now_ms)
            )
        except OverLimit:
            wait_s = self.limiter.retry_after_s(now_ms)
            raise Refused(429, f"too many batches; retry in {wait_s} s", retry_after_s=wait_s) from None
        if fresh_codes:
            await self.coupons.write_records(site, batch.visitor, fresh_codes)
        counts, revenue = action_counts(applied)
        actions, withdrawn = [], list(decisions.withdrawn)
        for candidates in decisions.slots:
            winner = None
            for decision in candidates:
                armable = decision.rule.spec.trigger != "now"
                if winner is not None:
                    if armable:
                        withdrawn.append(decision.rule.id)
                    counts[f"{decision.rule.id}:lost"] += 1
                    log.debug("rule %s lost its slot to %s", decision.rule.id, winner)
                elif (action := await self._action(decision, site, batch.visitor, now_ms, state)) is not None:
                    actions.append(action)
                    winner = decision.rule.id
                    counts[f"{winner}:offered"] += 1
                elif armable:
                    withdrawn.append(decision.rule.id)
        lists: dict[str, list[Product]] = {}
        if self.settings.recs:
            # Learning is written behind the answer: it waits on Redis only with no write-behind interval.
            await self.recs.observe(site, state, applied, now_ms)
            lists = await self.recs.fill(site, state, _fillers(decisions.fills), now_ms)
        for filled in self._lists(decisions.fills, site, now_ms, lists):
            actions.append(filled)
            counts[f"{filled.id}:offered"] += 1
        for event in applied:
            if isinstance(event, p.Purchase) and event.props.code:
                await self._redeem(site, event.props, now_ms, counts, revenue)
        await self.push.after_batch(site, batch.visitor, state, applied, decisions.pushes, now_ms)
        await self.stats.record(site.key, now_ms, counts, revenue)
        return p.Answer(actions=actions, withdraw=held(withdrawn, armed))

    async def recs_for(self, query: p.RecsQuery, origin: str | None) -> p.Answer:
        """One slot's list for a visitor, as the tag would get it on a page with that slot and item;
        nothing is written."""
        site = self.site_for(query.site, origin)
        now_ms = int(self.clock() * 1000)
        state = await self.store.load(site.key, query.visitor)
        state.session.slots, state.session.item = [query.slot], query.item or ""
        page: list[p.Event] = [p.PageView(props=p.PageProps(slots=[query.slot]))]
        if query.item:
            page.append(p.ProductView(props=p.ProductProps(id=query.item)))
        fills = self.engine.decide(state, page, site, now_ms).fills
        lists = await self.recs.fill(site, state, _fillers(fills), now_ms) if self.settings.recs else {}
        return p.Answer(actions=list(self._lists(fills, site, now_ms, lists)))

    def _lists(
        self, fills: Sequence[Decision], site: Site, now_ms: int, lists: dict[str, list[Product]]
    ) -> list[p.RecsAction]:
        """The slots that got products (an empty one draws nothing)."""
        drawn = (self.renderer.render_recs(fill, site, now_ms, lists) for fill in fills)
        return [action for action in drawn if action is not None]

    async def _action(
        self, decision: Decision, site: Site, visitor: str, now_ms: int, state: VisitorState
    ) -> p.Action | None:
        offer = decision.action
        if not isinstance(offer, Offer):
            return self.renderer.render(decision, site, now_ms)
        code = await self.coupons.issue(site, visitor, decision.rule.id, offer, now_ms, state)
        return self.renderer.render(decision, site, now_ms, code) if code else None

    async def _redeem(
        self,
        site: Site,
        purchase: p.PurchaseProps,
        now_ms: int,
        counts: Counter[str],
        revenue: dict[str, float],
    ) -> None:
        verdict = await self.coupons.redeem(site, purchase.code, purchase.order_id, purchase.value, now_ms)
        if verdict.valid and verdict.rule:
            counts[f"{verdict.rule}:redeemed"] += 1
            revenue[verdict.rule] += purchase.value
        elif not verdict.valid:
            log.info("order %s: code %s refused: %s", purchase.order_id, purchase.code, verdict.reason)


def build_runtime(
    settings: Settings,
    sites: dict[str, Site],
    redis: aioredis.Redis,
    rule_dirs: Sequence[Path],
    only_rules: Iterable[str] | None = None,
    clock: Callable[[], float] = time.time,
) -> Runtime:
    """Everything the event path needs; `only_rules` keeps just those rules (tests)."""
    rules, segments = load_rules(rule_dirs)
    if only_rules is not None:
        wanted = set(only_rules)
        unknown = wanted - {rule.id for rule in rules}
        if unknown:
            raise ValueError(f"no such rules: {sorted(unknown)}")
        rules = [rule for rule in rules if rule.id in wanted]
    store = VisitorStore(redis, settings.state_ttl_s)
    behind = WriteBehind(redis, settings.write_behind_ms / 1000)
    return Runtime(
        settings=settings,
        sites=sites,
        store=store,
        engine=Engine(rules, segments),
        renderer=Renderer(template_environment(rule_dirs)),
        coupons=Coupons(redis, store),
        stats=RuleStats(redis, behind),
        limiter=RateLimiter(
            redis, settings.rate_limit_visitor, settings.rate_limit_ip, settings.rate_window_s, behind
        ),
        recs=Recommender(redis, behind, settings.recs_cache_ms / 1000, settings.recs_learn_in_workers),
        push=PushScheduler.build(redis, store, settings),
        behind=behind,
        clock=clock,
    )


def action_counts(applied: list[p.Event]) -> tuple[Counter[str], dict[str, float]]:
    counts: Counter[str] = Counter()
    for event in applied:
        if isinstance(event, p.ActionShown | p.ActionClicked | p.ActionClosed):
            counts[f"{event.props.action}:{p.type_of(event).removeprefix('action_')}"] += 1
    return counts, defaultdict(float)


def held(withdrawn: list[str], armed: Sequence[str]) -> list[str]:
    """What to withdraw among the actions the page may hold armed ("*" drops them all)."""
    if "*" in withdrawn:
        return ["*"] if armed else []
    holding = set(armed)
    return [rule_id for rule_id in withdrawn if rule_id in holding]


def _fillers(fills: Sequence[Decision]) -> list[Recs]:
    return [fill.action for fill in fills if isinstance(fill.action, Recs)]
