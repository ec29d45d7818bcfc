"""`storetag worker`: moves due pushes from each site's schedule into its stream, reads the stream as one
consumer of the group `workers`, expands admin pushes to a segment or to all a page at a time, and sends.
A job is acknowledged only once its outcome is written (stats, a retry scheduled, a dead letter), so a
worker killed mid-batch loses nothing: its unacknowledged jobs are claimed by another worker after
`push_claim_idle_ms`. Sending is at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import msgspec
import redis.asyncio as aioredis

from server import protocol as p
from server.push_fanout import FanOuts
from server.push_queue import FanOut, PushJob, PushQueue
from server.push_sender import Message, Outcome, Sender
from server.push_stats import PushStats
from server.push_subscriptions import Device, PushSubscriptions
from server.rules import SegmentFunction
from server.settings import Settings
from server.sites import Site
from server.state import UNAVAILABLE, VisitorStore
from server.visitor import MAX_SHOWS_KEPT, ActionHistory, VisitorState

log = logging.getLogger("storetag.worker")

BATCH = 500
# Caps count rule pushes sent: a state write per visitor, this many at once (the pool has 100 connections).
STATE_WRITES_AT_ONCE = 32
notification_encoder = msgspec.json.Encoder()


@dataclass
class BatchOutcome:
    """What a batch of jobs leads to, written once the whole batch is sent."""

    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    delivered: list[Device] = field(default_factory=list)
    gone: list[Device] = field(default_factory=list)
    retries: dict[str, tuple[PushJob, int]] = field(default_factory=dict)
    dead: list[p.DeadLetter] = field(default_factory=list)
    # (visitor, rule) of rule pushes sent: their caps count them.
    sent_by_rules: list[tuple[str, str]] = field(default_factory=list)


def retry_after_s(header: str | None, now_s: float) -> float | None:
    """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    if not header:
        return None
    if header.strip().isdigit():
        return float(header.strip())
    try:
        return max(0.0, email.utils.parsedate_to_datetime(header).timestamp() - now_s)
    except (TypeError, ValueError):
        return None


class Worker:
    def __init__(
        self,
        settings: Settings,
        sites: dict[str, Site],
        redis: aioredis.Redis,
        sender: Sender,
        clock: Callable[[], float] = time.time,
        consumer: str = "",
        segments: Mapping[str, SegmentFunction] | None = None,
    ) -> None:
        self.settings = settings
        self.sites = [site for site in sites.values() if site.vapid_private_key]
        self.queue = PushQueue(redis)
        self.fanouts = FanOuts(redis, segments or {})
        self.subscriptions = PushSubscriptions(redis, settings.state_ttl_s)
        self.stats = PushStats(redis)
        self.store = VisitorStore(redis, settings.state_ttl_s)
        self.sender = sender
        self.clock = clock
        self.consumer = consumer or f"worker-{secrets.token_hex(4)}"

    async def run(self, stop: asyncio.Event) -> None:
        names = ", ".join(site.key for site in self.sites) or "no site (none has VAPID keys)"
        log.info("worker %s: sending for %s", self.consumer, names)
        grouped = False
        while not stop.is_set():
            try:
                if not grouped:
                    for site in self.sites:
                        await self.queue.ensure_group(site.key)
                    grouped = True
                handled = await self.run_once()
            except UNAVAILABLE as exc:
                # Unacknowledged jobs stay pending in the stream: this worker or another sends them later. The
                # groups are made again: a stream idle for its whole lifetime expires, and a Redis restored
                # from an old backup may lack them.
                if str(exc).startswith("NOGROUP"):
                    log.info("worker %s: %s; making the group again", self.consumer, exc)
                else:
                    log.warning("worker %s: redis unavailable (%s); trying again", self.consumer, exc)
                handled, grouped = 0, False
            if not handled:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.push_poll_ms / 1000)

    async def run_once(self) -> int:
        """One pass over every site; the number of jobs handled."""
        handled = 0
        for site in self.sites:
            handled += await self.work_site(site)
        return handled

    async def work_site(self, site: Site) -> int:
        now_ms = int(self.clock() * 1000)
        await self.queue.move_due(site.key, now_ms)
        claimed = await self.queue.claim(site.key, self.consumer, self.settings.push_claim_idle_ms, BATCH)
        found = claimed + await self.queue.read(site.key, self.consumer, BATCH)
        entries: list[tuple[str, PushJob]] = []
        for entry_id, job in found:
            if isinstance(job, FanOut):
                await self.fanouts.expand(site, entry_id, job, now_ms)
            else:
                entries.append((entry_id, job))
        if not entries:
            return len(found)
        jobs = [job for _, job in entries]
        outcome = BatchOutcome()
        targets = await self._targets(site, jobs, outcome)
        await asyncio.gather(
            *(self._deliver_to(site, job, device, outcome) for job, devices in targets for device in devices)
        )
        await self._write(site, outcome)
        await self.queue.done(site.key, [entry_id for entry_id, _ in entries])
        return len(found)

    async def _targets(
        self, site: Site, jobs: list[PushJob], outcome: BatchOutcome
    ) -> list[tuple[PushJob, list[Device]]]:
        """Each job's devices, read for the whole batch at once: the visitor's, and every device of the
        customer they are identified as now (not when the push was scheduled); a retry goes to its one
        device if it is still subscribed."""
        people = [job for job in jobs if job.person and not job.device]
        identified = await self.subscriptions.customer_of(site.key, {j.visitor for j in people if j.visitor})
        person = {id(job): identified.get(job.visitor) or job.customer for job in people}
        customers = await self.subscriptions.customers(site.key, {c for c in person.values() if c})
        visitors = {j.visitor for j in jobs if j.visitor} | {v for found in customers.values() for v in found}
        devices = await self.subscriptions.devices(site.key, visitors)
        targets = []
        for job in jobs:
            push, rule = job.notification.push, job.notification.rule
            if job.device:
                targets.append((job, [d for d in devices.get(job.visitor, ()) if d.id == job.device]))
                continue
            reached = [job.visitor, *customers.get(person.get(id(job), ""), ())]
            mine = list({d.endpoint: d for visitor in reached for d in devices.get(visitor, ())}.values())
            if not mine:
                outcome.counts[(push, rule, "failed:no_subscription")] += 1
            elif rule:
                outcome.sent_by_rules.append((job.visitor, rule))
            targets.append((job, mine))
        return targets

    async def _deliver_to(self, site: Site, job: PushJob, device: Device, outcome: BatchOutcome) -> None:
        push, rule = job.notification.push, job.notification.rule
        payload = notification_encoder.encode(
            msgspec.structs.replace(job.notification, visitor=device.visitor)
        )
        now_s = self.clock()
        sent = await self.sender.send(site, device, Message(payload, job.ttl, job.urgency, job.topic), now_s)
        if job.attempt == 1:
            outcome.counts[(push, rule, "sent")] += 1
        if sent.delivered:
            outcome.counts[(push, rule, "delivered")] += 1
            outcome.delivered.append(device)
        elif sent.status in (404, 410):
            outcome.counts[(push, rule, "failed:gone")] += 1
            outcome.gone.append(device)
        elif (sent.status == 429 or sent.status >= 500 or sent.status == 0) and not sent.unsafe:
            self._retry_or_bury(site, job, device, sent, now_s, outcome)
        else:
            self._bury(job, device, sent, _reason(sent), now_s, outcome)

    def _retry_or_bury(
        self, site: Site, job: PushJob, device: Device, sent: Outcome, now_s: float, outcome: BatchOutcome
    ) -> None:
        if job.attempt >= self.settings.push_max_attempts:
            self._bury(job, device, sent, f"{_reason(sent)} after {job.attempt} attempts", now_s, outcome)
            return
        waited = retry_after_s(sent.retry_after, now_s)
        if waited is None:
            waited = self.settings.push_retry_base_ms / 1000 * 2 ** (job.attempt - 1)
        delay_s = min(waited, self.settings.push_retry_max_s)
        retry = msgspec.structs.replace(
            job, visitor=device.visitor, customer="", device=device.id, attempt=job.attempt + 1
        )
        outcome.retries[f"retry:{secrets.token_hex(8)}"] = (retry, int((now_s + delay_s) * 1000))
        outcome.counts[(job.notification.push, job.notification.rule, "retried")] += 1

    def _bury(
        self, job: PushJob, device: Device, sent: Outcome, reason: str, now_s: float, outcome: BatchOutcome
    ) -> None:
        push, rule = job.notification.push, job.notification.rule
        outcome.counts[(push, rule, f"failed:{_reason_key(sent)}")] += 1
        outcome.dead.append(
            p.DeadLetter(push, rule, device.visitor, device.endpoint, reason, int(now_s * 1000))
        )

    async def _write(self, site: Site, outcome: BatchOutcome) -> None:
        now_ms = int(self.clock() * 1000)
        if outcome.delivered:
            await self.subscriptions.mark_delivered(site.key, outcome.delivered, now_ms)
        for device in outcome.gone:
            await self.subscriptions.remove(site.key, device.visitor, device.id)
        if outcome.retries:
            await self.queue.schedule(site.key, outcome.retries)
        if outcome.dead:
            await self.queue.bury(site.key, outcome.dead)
        await self.stats.record(site.key, outcome.counts)
        sends = outcome.sent_by_rules
        for start in range(0, len(sends), STATE_WRITES_AT_ONCE):
            await asyncio.gather(
                *(
                    self.store.update(site.key, visitor, _counting_send(rule, now_ms))
                    for visitor, rule in sends[start : start + STATE_WRITES_AT_ONCE]
                )
            )


def _reason(sent: Outcome) -> str:
    return f"HTTP {sent.status}" if sent.status else (sent.error or "no answer")


def _reason_key(sent: Outcome) -> str:
    """A failure as a stats count name: http_429, network, unsafe_endpoint."""
    if sent.status:
        return f"http_{sent.status}"
    return "unsafe_endpoint" if sent.unsafe else "network"


def _counting_send(rule: str, now_ms: int) -> Callable[[VisitorState], None]:
    def count(state: VisitorState) -> None:
        history = state.actions.setdefault(rule, ActionHistory())
        history.shown = [*history.shown, now_ms][-MAX_SHOWS_KEPT:]

    return count
