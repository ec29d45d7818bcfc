"""The rule API: the one module rule authors import.

    from server.rules import Popup, Visit, rule

    @rule(on="page_view", cap="1/ever")
    def welcome(visit: Visit) -> Popup | None:
        if visit.is_first_visit and visit.pages >= 2:
            return Popup("welcome.html", title="Welcome!")
        return None

A rule module's file name is the rule's id. A rule is a plain function of the visit, with no side effects,
returning one action or None; the engine calls it when an event it listens to arrives.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from server import protocol as p
from server.sites import Site
from server.visitor import ActionHistory, CartLine, Utm, VisitorState

DAY_MS = 24 * 3600 * 1000
_CAP = re.compile(r"^(\d+)/(session|day|ever|(\d+)d)$")
TRIGGERS = frozenset({"now"})


@dataclass(frozen=True)
class Cap:
    """At most `count` shows per window: a session, a day, N days, or ever."""

    count: int
    window: str

    @classmethod
    def parse(cls, text: str) -> Cap:
        match = _CAP.match(text)
        if not match or int(match[1]) < 1:
            raise ValueError(f"cap {text!r} is not like '1/session', '2/day', '3/7d' or '1/ever'")
        return cls(int(match[1]), match[2])

    def allows(self, history: ActionHistory | None, session_started: int, now_ms: int) -> bool:
        if history is None:
            return True
        if self.window == "ever":
            since = 0
        elif self.window == "session":
            since = session_started
        else:
            days = 1 if self.window == "day" else int(self.window[:-1])
            since = now_ms - days * DAY_MS
        return sum(1 for shown in history.shown if shown >= since) < self.count


@dataclass(frozen=True, init=False)
class Popup:
    """A modal pop-up drawn from a jinja2 template in rules/templates/ with these values."""

    template: str
    values: dict[str, Any] = field(default_factory=dict)
    kind = "popup"

    def __init__(self, template: str, **values: Any) -> None:
        object.__setattr__(self, "template", template)
        object.__setattr__(self, "values", values)


ActionSpec: TypeAlias = Popup
RuleFunction: TypeAlias = Callable[["Visit"], ActionSpec | None]


@dataclass(frozen=True)
class RuleSpec:
    on: frozenset[str]
    cap: Cap | None
    trigger: str
    priority: int
    expires_s: int


def rule(
    *,
    on: str | Iterable[str],
    cap: str | None = None,
    trigger: str = "now",
    priority: int = 0,
    expires_s: int = 300,
) -> Callable[[RuleFunction], RuleFunction]:
    """Marks a function as a rule listening to event types `on`; bad arguments fail at import."""
    events = frozenset([on] if isinstance(on, str) else on)
    unknown = events - p.EVENT_TYPES
    if unknown or not events:
        raise ValueError(f"unknown event types {sorted(unknown)}; known: {sorted(p.EVENT_TYPES)}")
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}; known: {sorted(TRIGGERS)}")
    spec = RuleSpec(events, Cap.parse(cap) if cap else None, trigger, priority, expires_s)

    def mark(function: RuleFunction) -> RuleFunction:
        function.__storetag_rule__ = spec  # type: ignore[attr-defined]
        return function

    return mark


@dataclass(frozen=True)
class Cart:
    lines: dict[str, CartLine]
    value: float

    @property
    def count(self) -> int:
        return sum(line.qty for line in self.lines.values())

    def __contains__(self, product_id: object) -> bool:
        return product_id in self.lines


class Visit:
    """A read-only view of a visitor at the moment a rule runs."""

    def __init__(self, state: VisitorState, event: p.Event, site: Site, now_ms: int) -> None:
        self._state = state
        self.event = event
        self.site = site
        self.now_ms = now_ms
        self.cart = Cart(dict(state.session.cart), state.cart_value)

    @property
    def visits(self) -> int:
        return self._state.profile.visits

    @property
    def is_first_visit(self) -> bool:
        return self._state.profile.visits <= 1

    @property
    def pages(self) -> int:
        """Pages viewed this session."""
        return self._state.session.pages

    @property
    def page_type(self) -> str:
        return self._state.session.page_type

    @property
    def url(self) -> str:
        return self._state.session.url

    @property
    def landing_page(self) -> str:
        return self._state.session.landing

    @property
    def referrer(self) -> str:
        return self._state.session.referrer

    @property
    def utm(self) -> Utm:
        return self._state.session.utm

    @property
    def device(self) -> str:
        """desktop, mobile, tablet or bot."""
        return self._state.session.device

    @property
    def viewed_products(self) -> dict[str, int]:
        return dict(self._state.session.products)

    @property
    def viewed_categories(self) -> dict[str, int]:
        return dict(self._state.session.categories)

    @property
    def checkout_started(self) -> bool:
        return self._state.session.checkout_started

    @property
    def purchased(self) -> bool:
        """Purchased in this session."""
        return self._state.session.purchased

    @property
    def orders(self) -> int:
        """Orders over the visitor's lifetime."""
        return self._state.profile.orders

    @property
    def revenue(self) -> float:
        return self._state.profile.revenue

    @property
    def customer_id(self) -> str:
        return self._state.profile.customer_id
