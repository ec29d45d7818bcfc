"""Loading rule modules and deciding which actions a visitor gets.

Rules are discovered in a fixed, visible order: the built-in rules/ package, then the extra directory from
settings. A duplicate id fails at start-up. Rules are indexed by event type, so a batch only calls the rules
that listen to its events, however many rules exist.
"""

from __future__ import annotations

import importlib.util
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from server import protocol as p
from server.rules import ActionSpec, RuleFunction, RuleSpec, Visit
from server.sites import Site
from server.visitor import VisitorState

log = logging.getLogger("storetag.engine")

BUILTIN_RULES_DIR = Path(__file__).resolve().parent.parent / "rules"


@dataclass(frozen=True)
class Rule:
    id: str
    function: RuleFunction
    spec: RuleSpec


@dataclass(frozen=True)
class Decision:
    rule: Rule
    action: ActionSpec


def _import_file(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"storetag: cannot import rule module {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rule_in(module: ModuleType, rule_id: str, path: Path) -> Rule | None:
    found = [
        Rule(rule_id, value, value.__storetag_rule__)
        for value in vars(module).values()
        if callable(value) and isinstance(getattr(value, "__storetag_rule__", None), RuleSpec)
    ]
    if len(found) > 1:
        raise SystemExit(f"storetag: {path} defines {len(found)} rules; one rule per module (file name = id)")
    return found[0] if found else None


def load_rules(directories: Iterable[Path]) -> list[Rule]:
    rules: dict[str, Rule] = {}
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
    return list(rules.values())


class Engine:
    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = {rule.id: rule for rule in rules}
        self.rule_ids = frozenset(self.rules)
        self.by_event: dict[str, list[Rule]] = defaultdict(list)
        for rule in rules:
            for event_type in rule.spec.on:
                self.by_event[event_type].append(rule)
        self.failures: Counter[str] = Counter()

    def decide(
        self, state: VisitorState, events: Sequence[p.Event], site: Site, now_ms: int
    ) -> list[Decision]:
        """Calls each rule listening to these events once, with the latest such event; applies caps
        and keeps at most one modal, the highest priority (ties: the rule loaded first)."""
        latest: dict[str, p.Event] = {}
        for event in events:
            for rule in self.by_event.get(p.type_of(event), ()):
                latest[rule.id] = event
        decisions = []
        for rule_id, rule in self.rules.items():
            if rule_id not in latest:
                continue
            cap = rule.spec.cap
            if cap and not cap.allows(state.actions.get(rule_id), state.session.started, now_ms):
                continue
            action = self._call(rule, Visit(state, latest[rule_id], site, now_ms))
            if action is not None:
                decisions.append(Decision(rule, action))
        # Every action kind so far is a modal, and a visitor sees one modal at a time.
        decisions.sort(key=lambda decision: -decision.rule.spec.priority)
        return decisions[:1]

    def _call(self, rule: Rule, visit: Visit) -> ActionSpec | None:
        try:
            action = rule.function(visit)
            if action is not None and not isinstance(action, ActionSpec):
                raise TypeError(f"a rule returns an action or None, not {type(action).__name__}")
            return action
        except Exception:
            self.failures[rule.id] += 1
            log.exception("rule %s failed; skipped", rule.id)
            return None
