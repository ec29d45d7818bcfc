"""Pushes from the event path and the admin API into the queue.

After each batch: an identify links the visitor to the customer (so pushes follow the person), a
`push_clicked` counts a click, an event a scheduled push names in `unless` cancels it (looked for only
while the visitor's state says one may wait), and each `Push` a rule decided is scheduled for its delay
(one pending per rule and visitor). Only visitors who can get a push (a device of their own, or
identified) get anything scheduled. An admin push is one job for a visitor or a customer, or one entry
naming a segment or all subscribers, which the workers expand (server/push_fanout.py).
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import redis.asyncio as aioredis

from server import protocol as p
from server.engine import Decision
from server.push_queue import FanOut, PushJob, PushQueue
from server.push_stats import PushStats
from server.push_subscriptions import PushSubscriptions
from server.rules import PUSH_CANCELLED_BY, Push, SegmentFunction
from server.settings import Settings
from server.sites import Site
from server.state import VisitorStore, visitor_key
from server.visitor import VisitorState

# KEYS: the visitor's devices, their pending pushes (rule → its `unless`, comma-separated); ARGV: whether
# the visitor is identified, the TTL, then rule and `unless` pairs. Records the pairs and answers 1 when
# the visitor can get a push, else 0 and records nothing.
_RECORD_PENDING = """
if ARGV[1] ~= '1' and redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]))
return 1
"""

# KEYS: the visitor's pending pushes; ARGV: what just happened. Removes and answers the rules whose
# pending push one of these events cancels.
_TAKE_CANCELLED = """
local happened = {}
for _, name in ipairs(ARGV) do happened[name] = true end
local cancelled = {}
local pending = redis.call('HGETALL', KEYS[1])
for i = 1, #pending, 2 do
  for name in string.gmatch(pending[i + 1], '[^,]+') do
    if happened[name] then
      table.insert(cancelled, pending[i])
      redis.call('HDEL', KEYS[1], pending[i])
      break
    end
  end
end
return cancelled
"""


# How long after its due time a push may still wait in the schedule (workers behind or down) and be cancelled.
PENDING_GRACE_MS = 86_400_000


def new_push_id() -> str:
    return secrets.token_hex(8)


def may_be_pending(state: VisitorState, now_ms: int) -> bool:
    """Whether a push a rule scheduled for this visitor may still wait in the schedule; if not, no event
    needs to look for one to cancel (most visitors never had one)."""
    due = state.profile.push_due
    return due > 0 and now_ms <= due + PENDING_GRACE_MS


def _noting_due(due_ms: int) -> Callable[[VisitorState], None]:
    def note(state: VisitorState) -> None:
        state.profile.push_due = max(state.profile.push_due, due_ms)

    return note


def cancelling_events(state: VisitorState, applied: Sequence[p.Event]) -> set[str]:
    happened = {p.type_of(event) for event in applied}
    if "cart_remove" in happened and not state.session.cart:
        happened.add("cart_emptied")
    return happened


class PushScheduler:
    def __init__(
        self,
        redis: aioredis.Redis,
        store: VisitorStore,
        subscriptions: PushSubscriptions,
        queue: PushQueue,
        stats: PushStats,
        public_url: str | None,
    ) -> None:
        self.store = store
        self.subscriptions = subscriptions
        self.queue = queue
        self.stats = stats
        self.public_url = public_url or ""
        self._record_pending = redis.register_script(_RECORD_PENDING)
        self._take_cancelled = redis.register_script(_TAKE_CANCELLED)

    @classmethod
    def build(cls, redis: aioredis.Redis, store: VisitorStore, settings: Settings) -> PushScheduler:
        subscriptions = PushSubscriptions(redis, settings.state_ttl_s)
        return cls(redis, store, subscriptions, PushQueue(redis), PushStats(redis), settings.public_url)

    async def after_batch(
        self,
        site: Site,
        visitor: str,
        state: VisitorState,
        applied: Sequence[p.Event],
        pushes: Sequence[Decision],
        now_ms: int,
    ) -> None:
        customer = state.profile.customer_id
        for event in applied:
            if isinstance(event, p.Identify) and customer:
                await self.subscriptions.link_customer(site.key, customer, visitor)
            elif isinstance(event, p.PushClicked):
                await self.stats.clicked(site.key, event.props.push)
        happened = cancelling_events(state, applied)
        if happened & PUSH_CANCELLED_BY and may_be_pending(state, now_ms):
            pending = visitor_key(site.key, visitor, "pushpending")
            cancelled = await self._take_cancelled(keys=[pending], args=sorted(happened))
            if cancelled:
                await self.queue.cancel(site.key, [f"{rule.decode()}:{visitor}" for rule in cancelled])
        wanted = [d for d in pushes if isinstance(d.action, Push) and not d.action.unless & happened]
        if wanted:
            await self._schedule(site, visitor, customer, wanted, now_ms)

    async def _schedule(
        self, site: Site, visitor: str, customer: str, decisions: Sequence[Decision], now_ms: int
    ) -> None:
        pairs: list[str] = []
        jobs: dict[str, tuple[PushJob, int]] = {}
        for decision in decisions:
            push = decision.action
            assert isinstance(push, Push)
            pairs += [decision.rule.id, ",".join(sorted(push.unless)) or "-"]
            notification = p.Notification(
                push=new_push_id(),
                title=push.title,
                body=push.body,
                icon=push.icon,
                image=push.image,
                url=push.url,
                rule=decision.rule.id,
                api=self.public_url,
                site=site.key,
                visitor=visitor,
            )
            job = PushJob(
                notification=notification,
                visitor=visitor,
                customer=customer,
                ttl=push.ttl_s,
                urgency=push.urgency,
                topic=push.topic or decision.rule.id[:32],
            )
            jobs[f"{decision.rule.id}:{visitor}"] = (job, now_ms + push.after_s * 1000)
        keys = [visitor_key(site.key, visitor, "push"), visitor_key(site.key, visitor, "pushpending")]
        args = ["1" if customer else "0", self.store.ttl_s, *pairs]
        if await self._record_pending(keys=keys, args=args):
            # Noted in the visitor's state before the job is queued: the events that may cancel it look.
            latest = max(due for _, due in jobs.values())
            await self.store.update(site.key, visitor, _noting_due(latest))
            await self.queue.schedule(site.key, jobs)

    async def send_now(
        self, site: Site, order: p.PushSend, segments: Mapping[str, SegmentFunction]
    ) -> p.PushQueued:
        """Queues an admin push: one job for a visitor or a customer (the worker finds their devices), or an
        audience the workers expand into one job per subscriber."""
        if order.segment is not None and order.segment not in segments:
            raise ValueError(f"no segment named {order.segment!r}")
        push = new_push_id()
        notification = p.Notification(
            push=push,
            title=order.title,
            body=order.body,
            icon=order.icon,
            image=order.image,
            url=order.url,
            buttons=order.buttons,
            api=self.public_url,
            site=site.key,
            visitor=order.visitor or "",
        )
        topic = order.topic or ""
        if order.visitor is None and order.customer is None:
            fanout = FanOut(
                notification=notification,
                segment=order.segment or "",
                ttl=order.ttl,
                urgency=order.urgency,
                topic=topic,
            )
            await self.queue.enqueue_fanout(site.key, fanout)
            return p.PushQueued(push)
        visitors = 1
        if order.customer is not None:
            visitors = len(await self.subscriptions.visitors_of(site.key, order.customer))
        job = PushJob(
            notification=notification,
            visitor=order.visitor or "",
            customer=order.customer or "",
            ttl=order.ttl,
            urgency=order.urgency,
            topic=topic,
        )
        await self.stats.record(site.key, Counter({(push, "", "visitors"): visitors}))
        await self.queue.enqueue(site.key, [job])
        return p.PushQueued(push)
