"""Loading rule modules and deciding which actions a visitor gets.

Rules are discovered in a fixed, visible order: the built-in rules/ package, then the extra directory from
settings. A duplicate id fails at start-up. Rules are indexed by event type, page type and what their
targeting asks for, so a batch only calls the rules that listen to its events and may be for its visitor,
however many rules exist.
"""

from __future__ import annotations

import importlib.util
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from server import protocol as p
from server.rules import (
    ActionSpec,
    Offer,
    Popup,
    Push,
    PushPrompt,
    Recs,
    RuleFunction,
    RuleSpec,
    SegmentFunction,
    Visit,
)
from server.sites import Site
from server.targeting import Facts
from server.visitor import VisitorState

log = logging.getLogger("storetag.engine")

BUILTIN_RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
# Push states in which a soft prompt would only nag: subscribed already, refused, or no web push at all.
NO_PUSH_PROMPT = frozenset({"subscribed", "denied", "unsupported"})


@dataclass(frozen=True)
class Rule:
    id: str
    function: RuleFunction
    spec: RuleSpec


@dataclass(frozen=True)
class Decision:
    rule: Rule
    action: ActionSpec


@dataclass(frozen=True)
class Decisions:
    # Per trigger slot, the actions rules want there, highest priority first: the first that can be built
    # (its template renders, its code can be issued) takes the slot.
    slots: list[list[Decision]]
    # Rule ids whose armed actions the tag must drop ("*": all), because their conditions no longer hold:
    # rules on a trigger other than `now` that were called and gave nothing.
    withdrawn: list[str]
    # The rule filling each recommendation slot on the page.
    fills: list[Decision] = field(default_factory=list)
    # Web pushes to schedule: no trigger slot, no site pop-up limit.
    pushes: list[Decision] = field(default_factory=list)

    def armed_after(self, armed: Sequence[str]) -> list[str]:
        """What the visitor's pages may hold armed once they have this answer: what they may have held, less
        what it withdraws, and every action it may arm (each slot's winner is among its candidates)."""
        kept = (
            [] if "*" in self.withdrawn else [rule_id for rule_id in armed if rule_id not in self.withdrawn]
        )
        for candidates in self.slots:
            kept += [
                decision.rule.id
                for decision in candidates
                if decision.rule.spec.trigger != "now" and decision.rule.id not in kept
            ]
        return kept


def _import_file(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"storetag: cannot import rule module {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _marked(module: ModuleType, mark: str) -> list[Callable[..., Any]]:
    return [value for value in vars(module).values() if callable(value) and getattr(value, mark, None)]


def _rule_in(module: ModuleType, rule_id: str, path: Path) -> Rule | None:
    marked = _marked(module, "__storetag_rule__")
    found = [Rule(rule_id, value, value.__dict__["__storetag_rule__"]) for value in marked]
    if len(found) > 1:
        raise SystemExit(f"storetag: {path} defines {len(found)} rules; one rule per module (file name = id)")
    return found[0] if found else None


def load_rules(directories: Iterable[Path]) -> tuple[list[Rule], dict[str, SegmentFunction]]:
    """Rules and segments from these directories, in order; a duplicate id or name stops start-up."""
    rules: dict[str, Rule] = {}
    segments: dict[str, SegmentFunction] = {}
    for directory in directories:
        for path in sorted(directory.glob("*.py")):
            if path.name.startswith("_"):
                continue
            rule_id = path.stem
            if rule_id in rules:
                raise SystemExit(f"storetag: duplicate rule id {rule_id!r} in {path}")
            module = _import_file(path, f"storetag_rules.{directory.name}.{rule_id}")
            found = _rule_in(module, rule_id, path)
            if found is not None:
                rules[rule_id] = found
            for predicate in _marked(module, "__storetag_segment__"):
                if predicate.__name__ in segments:
                    raise SystemExit(f"storetag: duplicate segment {predicate.__name__!r} in {path}")
                segments[predicate.__name__] = predicate
    missing = {rule.spec.segment for rule in rules.values()} - set(segments) - {""}
    if missing:
        raise SystemExit(f"storetag: rules name segments that are not defined: {sorted(missing)}")
    return list(rules.values()), segments


class Call(NamedTuple):
    """A rule a batch calls, with its place in the calling order and the batch's types it listens to."""

    rank: int
    rule: Rule
    types: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """The rules a batch with these event types may call on this page type: those for every visitor in
    calling order, those indexed by what their targeting asks for (attribute → value → calls), and those
    checked on every batch (wildcard paths only). `later`: every listening rule on a trigger other than
    `now`, the page's type kept out or not; those that give no action are withdrawn."""

    free: tuple[Call, ...]
    indexed: dict[str, dict[str, tuple[Call, ...]]]
    scanned: tuple[Call, ...]
    later: frozenset[str]

    @classmethod
    def of(cls, listening: Iterable[Call], page_type: str) -> Plan:
        free: list[Call] = []
        indexed: dict[str, dict[str, list[Call]]] = defaultdict(lambda: defaultdict(list))
        scanned: list[Call] = []
        later: list[str] = []
        for call in listening:
            spec = call.rule.spec
            if spec.trigger != "now":
                later.append(call.rule.id)
            if spec.pages and page_type not in spec.pages:
                continue
            anchor = spec.targets.anchor
            if anchor is not None:
                attribute, values = anchor
                for value in values:
                    indexed[attribute][value].append(call)
            elif spec.targets.wants:
                scanned.append(call)
            else:
                free.append(call)
        return cls(
            tuple(free),
            {
                attribute: {value: tuple(calls) for value, calls in by_value.items()}
                for attribute, by_value in indexed.items()
            },
            tuple(scanned),
            frozenset(later),
        )

    def calls(self, state: VisitorState) -> Sequence[Call]:
        """The rules to call for this visitor, in calling order."""
        if not (self.indexed or self.scanned):
            return self.free
        facts = Facts(state)
        found = {
            call.rank: call
            for attribute, by_value in self.indexed.items()
            for value in facts.of(attribute)
            for call in by_value.get(value, ())
        }
        targeted = [call for call in found.values() if call.rule.spec.targets.match(facts, anchored=True)]
        targeted += [call for call in self.scanned if call.rule.spec.targets.match(facts)]
        return sorted((*self.free, *targeted)) if targeted else self.free


ACTIONS = (Popup, Offer, Recs, Push)
MAX_PLANS = 4096


class Engine:
    def __init__(self, rules: Sequence[Rule], segments: Mapping[str, SegmentFunction] | None = None) -> None:
        self.rules = {rule.id: rule for rule in rules}
        self.rule_ids = frozenset(self.rules)
        self.segments = dict(segments or {})
        self.transactional = frozenset(rule.id for rule in rules if rule.spec.transactional)
        self.listened = frozenset(event_type for rule in rules for event_type in rule.spec.on)
        self.page_types = frozenset(page_type for rule in rules for page_type in rule.spec.pages)
        # Highest priority first, ties in load order: the order decide() calls rules in.
        self.ranked = sorted(rules, key=lambda rule: -rule.spec.priority)
        self._plans: dict[tuple[frozenset[str], str], Plan] = {}
        self.failures: Counter[str] = Counter()

    def plan(self, types: frozenset[str], page_type: str) -> Plan:
        # Both come from clients: types no rule listens to and page types no rule names are left out of the
        # key, and the cache is bounded.
        types &= self.listened
        page_type = page_type if page_type in self.page_types else ""
        plan = self._plans.get((types, page_type))
        if plan is None:
            if len(self._plans) >= MAX_PLANS:
                self._plans.clear()
            plan = self._plans[types, page_type] = Plan.of(
                (
                    Call(rank, rule, tuple(rule.spec.on & types))
                    for rank, rule in enumerate(self.ranked)
                    if rule.spec.on & types
                ),
                page_type,
            )
        return plan

    def decide(
        self,
        state: VisitorState,
        events: Sequence[p.Event],
        site: Site,
        now_ms: int,
        armed: Sequence[str] = (),
    ) -> Decisions:
        """Calls each rule listening to these events once, with the latest such event, and ranks the actions
        per trigger by priority (ties: the rule loaded first); the tag shows one modal at a time. Each
        recommendation slot on the page is filled by the highest priority rule that fills it. `armed`: the
        actions the visitor's pages may hold armed, the only ones to withdraw."""
        latest: dict[str, p.Event] = {}
        position: dict[str, int] = {}
        for index, event in enumerate(events):
            event_type = p.type_of(event)
            latest[event_type], position[event_type] = event, index
        plan = self.plan(frozenset(latest), state.session.page_type)
        site_limited = self._site_limit_reached(state, site, now_ms)
        slots: dict[str, list[Decision]] = defaultdict(list)
        fills: dict[str, Decision] = {}
        pushes: list[Decision] = []
        # Rules whose action stands; every other rule on a later trigger is withdrawn.
        standing: set[str] = set()
        # One view per event, shared by the rules it calls (segments are evaluated once per view).
        visits: dict[str, Visit] = {}
        started, history_of = state.session.started, state.actions
        for _, rule, types in plan.calls(state):
            spec, action = rule.spec, None
            history = history_of.get(rule.id)
            if history is None or spec.allows(history, started, now_ms):
                event_type = types[0] if len(types) == 1 else max(types, key=position.__getitem__)
                visit = visits.get(event_type)
                if visit is None:
                    visit = visits[event_type] = Visit(state, latest[event_type], site, now_ms, self.segments)
                try:
                    if not spec.segment or visit.in_segment(spec.segment):
                        action = rule.function(visit)
                        if action is not None and not isinstance(action, ACTIONS):
                            raise TypeError(f"a rule returns an action or None, not {type(action).__name__}")
                except Exception:
                    self.failures[rule.id] += 1
                    log.exception("rule %s failed; skipped", rule.id)
                    action = None
            if isinstance(action, Push):
                # Not a pop-up: it goes to the schedule, and site-wide pop-up limits do not hold it back.
                # A site without web push (no VAPID key) has no device to send it to.
                if site.vapid_public_key:
                    pushes.append(Decision(rule, action))
            elif (
                action is None
                or (site_limited and not spec.transactional and not isinstance(action, Recs))
                or (isinstance(action, PushPrompt) and not self._may_prompt(state, site))
            ):
                continue
            elif isinstance(action, Recs):
                # A list is no pop-up: site-wide pop-up limits do not hold it back.
                if action.slot in state.session.slots:
                    fills.setdefault(action.slot, Decision(rule, action))
            else:
                slots[spec.trigger].append(Decision(rule, action))
            standing.add(rule.id)
        withdrawn = ["*"] if site_limited else []
        # Only an action on a later trigger can be armed in the tag: one shown `now` is gone.
        withdrawn += [rule_id for rule_id in armed if rule_id in plan.later and rule_id not in standing]
        return Decisions(list(slots.values()), withdrawn, list(fills.values()), pushes)

    @staticmethod
    def _may_prompt(state: VisitorState, site: Site) -> bool:
        """A soft prompt is for a site with web push (a VAPID key) and a visitor who may still say yes."""
        return bool(site.vapid_public_key) and state.profile.push not in NO_PUSH_PROMPT

    def _site_limit_reached(self, state: VisitorState, site: Site, now_ms: int) -> bool:
        if not (site.popups_per_session or site.quiet_period_s):
            return False
        shows = [
            shown
            for rule_id, history in state.actions.items()
            if rule_id not in self.transactional
            for shown in history.shown
            if shown >= state.session.started
        ]
        if site.popups_per_session and len(shows) >= site.popups_per_session:
            return True
        return bool(site.quiet_period_s and shows and now_ms - max(shows) < site.quiet_period_s * 1000)
