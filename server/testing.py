"""A visitor simulator for rule tests: feed events, assert the actions.

It runs the production event path (state update, engine, rendering) on the embedded store with a clock
the test moves, and shows each answered action the way the tag would, so caps behave as in a browser.

    sim = Simulator(rules=["welcome"])
    assert await sim.page_view() == []
    [popup] = await sim.page_view()
    assert popup.id == "welcome"

Actions triggered `now` are shown at once, as the tag shows them; others stay armed until `fire()`.

Recommendations learn from every visitor: `sim.new_visitor()` switches to another one on the same shop.

Web push: `await sim.subscribe_push()` gives the visitor a device, `await sim.scheduled_pushes()` is what
waits in the schedule for them, and `await sim.send_due_pushes()` sends what is due at the simulator's
clock, as the worker would, to a device that accepts everything (caps count what it sends).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fakeredis
import msgspec
import redis.asyncio as aioredis

from server import protocol as p
from server.catalog_import import load
from server.engine import BUILTIN_RULES_DIR
from server.ingest import build_runtime
from server.push_sender import Message, Outcome, Sender
from server.push_subscriptions import Device
from server.recs import Context
from server.recs_spec import Strategy
from server.rules import Visit
from server.settings import Settings
from server.sites import Site
from server.state import visitor_key
from server.visitor import VisitorState
from server.worker import Worker

DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140 Safari/537.36"
TEST_SITE = Site(
    key="shop",
    name="Test Shop",
    origins=("https://shop.test",),
    secret="test-secret",
    settings={"free_shipping_over": 50},
)
# The test shop with web push on: push prompts and pushes are only for a site with a VAPID key. The
# simulator's sender signs nothing, so the pair need not be real.
PUSH_SITE = msgspec.structs.replace(TEST_SITE, vapid_public_key="BPUBLIC", vapid_private_key="private")


@dataclass(frozen=True)
class ScheduledPush:
    rule: str
    title: str
    body: str
    url: str
    # Seconds from the simulator's now until it is due.
    due_in_s: float
    unless: list[str]


class AcceptingSender(Sender):
    """A push service that accepts every push and remembers it: no network, no keys."""

    def __init__(self) -> None:
        super().__init__(allow_private=True, concurrency=1)
        self.sent: list[p.Notification] = []

    async def send(self, site: Site, device: Device, message: Message, now_s: float) -> Outcome:
        self.sent.append(msgspec.json.decode(message.payload, type=p.Notification))
        return Outcome(201)


# Every write lands before the answer and every list reads the latest signal: a test sees at once what it
# sent.
AT_ONCE = Settings(write_behind_ms=0, recs_cache_ms=0)


class Simulator:
    def __init__(
        self,
        rules: Iterable[str] | None = None,
        site: Site = TEST_SITE,
        user_agent: str = DESKTOP_UA,
        accept_language: str = "en-US,en;q=0.8",
        country: str = "",
        rule_dirs: Iterable[Path] = (BUILTIN_RULES_DIR,),
        redis: aioredis.Redis | None = None,
        settings: Settings = AT_ONCE,
    ) -> None:
        self.now = time.time()
        self.site = site
        self.user_agent = user_agent
        self.accept_language = accept_language
        self.country = country
        self.new_visitor()
        self._withdrawn: list[str] = []
        self.runtime = build_runtime(
            settings,
            {site.key: site},
            redis if redis is not None else fakeredis.FakeAsyncRedis(),
            list(rule_dirs),
            only_rules=rules,
            clock=lambda: self.now,
        )

    def new_visitor(self) -> None:
        """From now on events come from another visitor, on the same shop: the traffic recommendations
        learn from."""
        self.visitor = secrets.token_hex(16)
        self.session = secrets.token_hex(16)

    def advance(self, *, seconds: float = 0, minutes: float = 0, hours: float = 0, days: float = 0) -> None:
        self.now += seconds + 60 * minutes + 3600 * hours + 86400 * days

    async def send(self, *events: p.Event, armed: Iterable[str] | None = None) -> list[p.Action]:
        """Posts one batch and returns the actions answered. As the tag does, actions triggered `now` are
        shown at once; others stay armed until the test calls fire(). `armed`: the ids the page says it
        holds armed (by default it says nothing, as while another batch awaits its answer: the answer
        then withdraws among what the session's answers may have armed)."""
        held = None if armed is None else list(armed)
        batch = p.EventBatch(
            self.site.key, self.visitor, self.session, list(events), secrets.token_hex(16), held
        )
        answer = await self._ingest(batch)
        self._withdrawn = list(answer.withdraw)
        for action in answer.actions:
            if action.trigger == "now":
                await self.fire(action)
        return answer.actions

    async def fire(self, action: p.Action) -> None:
        """The action's trigger fired and the tag showed it."""
        shown: p.Event = p.ActionShown(props=p.ActionEventProps(action.id))
        if isinstance(action, p.RecsAction):
            items = [item.id for item in action.items]
            shown = p.RecsShown(props=p.RecsShownProps(action.slot, action.strategy, items))
        self._withdrawn += (
            await self._ingest(p.EventBatch(self.site.key, self.visitor, self.session, [shown]))
        ).withdraw

    @property
    def withdrawn(self) -> list[str]:
        """What the tag was told to disarm since the last batch sent: by its answer and by the answers to the
        shows it set off."""
        return self._withdrawn

    async def _ingest(self, batch: p.EventBatch) -> p.Answer:
        return await self.runtime.ingest(batch, None, self.user_agent, self.accept_language, self.country)

    async def track(self, event_type: str, url: str = "https://shop.test/", **props: Any) -> list[p.Action]:
        event = msgspec.convert({"type": event_type, "url": url, "props": props}, p.Event)
        return await self.send(event)

    async def page_view(
        self, url: str = "https://shop.test/", page_type: str = "", slots: Iterable[str] = ()
    ) -> list[p.Action]:
        return await self.track("page_view", url=url, page_type=page_type, slots=list(slots))

    async def product_page(self, product: str, slots: Iterable[str] = (), **props: Any) -> list[p.Action]:
        """A product page as the tag reports it: the page view (with its slots) and the product view in
        one batch. `props` describe the product (name, price, category, url …)."""
        page = p.PageView(
            url=f"https://shop.test/p/{product}", props=p.PageProps("product", slots=list(slots))
        )
        view = msgspec.convert(
            {"type": "product_view", "url": page.url, "props": {"id": product, **props}}, p.Event
        )
        return await self.send(page, view)

    async def import_catalog(self, *rows: dict[str, Any]) -> p.CatalogReport:
        """Loads catalog rows as `storetag catalog import` would."""
        converted = [msgspec.convert(row, p.CatalogRow) for row in rows]
        return await load(self.runtime.recs.catalog, self.site.key, self.site.currency, converted)

    async def visit(self) -> Visit:
        """The visit as a rule would see it now, for testing segments and targeting."""
        state = await self.state()
        return Visit(state, p.PageView(), self.site, int(self.now * 1000), self.runtime.engine.segments)

    async def recommend(self, strategy: Strategy, limit: int = 10) -> list[str]:
        """The ids a strategy gives the current visitor now, on the page of their last page view."""
        ctx = Context.of(await self.state())
        products = await self.runtime.recs.recommend(
            self.site.key, ctx, strategy, limit, int(self.now * 1000)
        )
        return [product.id for product in products]

    async def subscribe_push(self) -> None:
        """The visitor allows notifications on this device."""
        device = p.PushSubscription(
            f"https://push.test/{secrets.token_hex(8)}", p.PushKeys(p256dh="simulated", auth="simulated")
        )
        await self.runtime.push.subscriptions.add(self.site.key, self.visitor, device, int(self.now * 1000))

    async def scheduled_pushes(self) -> list[ScheduledPush]:
        """The pushes waiting in the schedule for this visitor, soonest first."""
        scheduled = await self.runtime.push.queue.scheduled(self.site.key)
        mine = sorted(
            ((due, job) for job, due in scheduled.values() if job.visitor == self.visitor),
            key=lambda pair: pair[0],
        )
        return [
            ScheduledPush(
                job.notification.rule,
                job.notification.title,
                job.notification.body,
                job.notification.url,
                round(due / 1000 - self.now, 1),
                await self._unless(job.notification.rule),
            )
            for due, job in mine
        ]

    async def _unless(self, rule: str) -> list[str]:
        pending = await self.runtime.store.redis.hget(
            visitor_key(self.site.key, self.visitor, "pushpending"), rule
        )
        return sorted(pending.decode().split(",")) if isinstance(pending, bytes) else []

    async def send_due_pushes(self) -> list[p.Notification]:
        """Sends what is due now, as `storetag worker` would; returns the notifications sent."""
        sender = AcceptingSender()
        # The worker sends for sites with VAPID keys; the accepting sender needs none.
        site = msgspec.structs.replace(self.site, vapid_private_key="simulated")
        worker = Worker(
            Settings(), {site.key: site}, self.runtime.store.redis, sender, clock=lambda: self.now
        )
        await worker.queue.ensure_group(site.key)
        while await worker.run_once():
            pass
        return sender.sent

    async def state(self) -> VisitorState:
        return await self.runtime.store.load(self.site.key, self.visitor)
