"""The rule API: the one module rule authors import.

    from server.rules import Popup, Visit, rule

    @rule(on="page_view", cap="1/ever", visitor="new")
    def welcome(visit: Visit) -> Popup | None:
        if visit.pages >= 2:
            return Popup("welcome.html", title="Welcome!")
        return None

A rule module's file name is the rule's id. A rule is a plain function of the visit, with no side effects,
returning one action or None; the engine calls it when an event it listens to arrives on a page and for a
visitor its targeting (server/targeting.py) allows. Segments are named
predicates on a visit, defined once with @segment in any rule module and read with visit.in_segment(name).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from types import MappingProxyType
from typing import Any, TypeAlias
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from server import protocol as p
from server.recs_spec import Recs as Recs
from server.recs_spec import Strategy as Strategy
from server.recs_spec import bought_together as bought_together
from server.recs_spec import category_popular as category_popular
from server.recs_spec import for_you as for_you
from server.recs_spec import popular as popular
from server.recs_spec import recently_viewed as recently_viewed
from server.recs_spec import similar as similar
from server.recs_spec import trending as trending
from server.recs_spec import viewed_together as viewed_together
from server.sites import Site
from server.targeting import Targets
from server.visitor import ActionHistory, CartLine, Utm, VisitorState

DAY_MS = 24 * 3600 * 1000
_CAP = re.compile(r"^(\d+)/(session|day|ever|(\d+)d)$")
_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TRIGGER = re.compile(r"^(now|exit_intent|delay:\d{1,5}|idle:\d{1,5}|scroll:(100|[1-9]?\d)|click:.{1,200})$")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def parse_duration_s(text: str) -> int:
    """'30s', '15m', '2h', '3d' → seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"duration {text!r} is not like '30s', '15m', '2h' or '3d'")
    return int(match[1]) * _UNIT_S[match[2]]


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


@dataclass(frozen=True, init=False)
class Offer:
    """A pop-up with a single-use discount code, the same code each time this visitor sees it.

    The code comes from a pool the shop uploaded (`pool="WINTER"`) or is generated and signed by the
    server (`percent=10`, prefix from `prefix`). The template gets `code`, `offer_expires` (epoch ms) and
    `apply_url` (when the site has a `discount_url`), besides the values given here.
    """

    template: str
    pool: str
    percent: int
    prefix: str
    valid_s: int
    values: dict[str, Any] = field(default_factory=dict)
    kind = "offer"

    def __init__(
        self,
        template: str,
        *,
        pool: str = "",
        percent: int = 0,
        prefix: str = "SAVE",
        valid: str = "2d",
        **values: Any,
    ) -> None:
        if bool(pool) == bool(percent):
            raise ValueError(
                "an Offer takes either a pool of uploaded codes or a percent to generate codes for"
            )
        for name, value in (
            ("template", template),
            ("pool", pool),
            ("percent", percent),
            ("prefix", prefix),
            ("valid_s", parse_duration_s(valid)),
            ("values", values),
        ):
            object.__setattr__(self, name, value)


# What may cancel a scheduled push: these events, and "cart_emptied" (a cart_remove leaving the cart empty).
PUSH_CANCELLED_BY = frozenset(
    {"purchase", "cart_emptied", "cart_add", "cart_remove", "checkout_start", "signup", "push_clicked"}
)
URGENCIES = ("very-low", "low", "normal", "high")


@dataclass(frozen=True, init=False)
class Push:
    """A web push to the visitor's devices (and, once identified, every device of the customer), sent
    `after` a delay unless one of the `unless` events comes first. Not a pop-up: it takes no trigger slot
    and site pop-up limits do not apply; caps count pushes sent. One push per rule and visitor is pending
    at a time: a newer decision replaces it. `ttl` is how long the push service keeps it for an offline
    device; `topic` (default: the rule id) makes a newer push replace an undelivered older one."""

    title: str
    body: str
    url: str
    icon: str
    image: str
    after_s: int
    unless: frozenset[str]
    ttl_s: int
    urgency: str
    topic: str
    kind = "push"

    def __init__(
        self,
        title: str,
        body: str = "",
        *,
        url: str = "",
        icon: str = "",
        image: str = "",
        after: str = "0s",
        unless: Iterable[str] = ("purchase",),
        ttl: str = "1d",
        urgency: str = "normal",
        topic: str = "",
    ) -> None:
        cancelled_by = frozenset(unless)
        if not title:
            raise ValueError("a Push needs a title")
        if unknown := cancelled_by - PUSH_CANCELLED_BY:
            raise ValueError(f"a Push is cancelled by {sorted(PUSH_CANCELLED_BY)}, not {sorted(unknown)}")
        if urgency not in URGENCIES:
            raise ValueError(f"urgency {urgency!r} is not one of {', '.join(URGENCIES)}")
        if topic and not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", topic):
            raise ValueError("a topic is 1 to 32 letters, digits, - or _")
        for name, value in (
            ("title", title),
            ("body", body),
            ("url", url),
            ("icon", icon),
            ("image", image),
            ("after_s", parse_duration_s(after)),
            ("unless", cancelled_by),
            ("ttl_s", parse_duration_s(ttl)),
            ("urgency", urgency),
            ("topic", topic),
        ):
            object.__setattr__(self, name, value)


class PushPrompt(Popup):
    """The soft prompt for web push: a pop-up that explains the pushes in the shop's words. Only a click
    on its `data-storetag-cta` button asks the browser for permission; `data-storetag-close` ("not now")
    closes it. The engine never sends it to a visitor who is subscribed or refused, nor on a site without a
    VAPID key."""

    kind = "push_prompt"


ActionSpec: TypeAlias = Popup | Offer | Recs | Push | PushPrompt
RuleFunction: TypeAlias = Callable[["Visit"], ActionSpec | None]
SegmentFunction: TypeAlias = Callable[["Visit"], bool]


@dataclass(frozen=True)
class RuleSpec:
    on: frozenset[str]
    caps: tuple[Cap, ...]
    trigger: str
    priority: int
    expires_s: int
    # Seconds after the visitor closed it during which it is not shown again.
    cooldown_s: int = 0
    # Never shown again once the visitor clicked it or redeemed its code.
    until_converted: bool = False
    # A receipt rather than a promotion: site-wide pop-up limits neither stop nor count it.
    transactional: bool = False
    segment: str = ""
    # Only on these page types (the visitor's current page); empty: on every page.
    pages: frozenset[str] = frozenset()
    # Only for visitors with these devices, carts, paths … (server/targeting.py).
    targets: Targets = field(default_factory=Targets)

    def allows(self, history: ActionHistory | None, session_started: int, now_ms: int) -> bool:
        if history is not None:
            if self.until_converted and history.converted:
                return False
            if (
                self.cooldown_s
                and history.last_closed
                and now_ms - history.last_closed < self.cooldown_s * 1000
            ):
                return False
        return all(cap.allows(history, session_started, now_ms) for cap in self.caps)


def rule(
    *,
    on: str | Iterable[str],
    cap: str | Iterable[str] = (),
    trigger: str = "now",
    priority: int = 0,
    expires: str = "5m",
    cooldown_after_close: str = "",
    until_converted: bool = False,
    transactional: bool = False,
    segment: str = "",
    page: str | Iterable[str] = (),
    **targets: str | Iterable[str],
) -> Callable[[RuleFunction], RuleFunction]:
    """Marks a function as a rule listening to event types `on`; bad arguments fail at import. `targets`:
    the visitors it is for, by the attributes in server.targeting.ATTRIBUTES (device="mobile", cart=[…])."""
    events = frozenset([on] if isinstance(on, str) else on)
    pages = frozenset([page] if isinstance(page, str) else page)
    if not all(isinstance(name, str) and name for name in pages):
        raise ValueError(f"page takes page types like 'product' or 'cart', not {page!r}")
    unknown = events - p.EVENT_TYPES
    if unknown or not events:
        raise ValueError(f"unknown event types {sorted(unknown)}; known: {sorted(p.EVENT_TYPES)}")
    if not _TRIGGER.match(trigger):
        raise ValueError(
            f"trigger {trigger!r} is not one of now, exit_intent, delay:SECONDS, idle:SECONDS, "
            "scroll:PERCENT, click:CSS_SELECTOR"
        )
    spec = RuleSpec(
        on=events,
        caps=tuple(Cap.parse(text) for text in ([cap] if isinstance(cap, str) else cap)),
        trigger=trigger,
        priority=priority,
        expires_s=parse_duration_s(expires),
        cooldown_s=parse_duration_s(cooldown_after_close) if cooldown_after_close else 0,
        until_converted=until_converted,
        transactional=transactional,
        segment=segment,
        pages=pages,
        targets=Targets.parse(targets),
    )

    def mark(function: RuleFunction) -> RuleFunction:
        function.__storetag_rule__ = spec  # type: ignore[attr-defined]
        return function

    return mark


def segment(function: SegmentFunction) -> SegmentFunction:
    """Names a predicate on a visit (by its function name) for rules to reuse."""
    function.__storetag_segment__ = True  # type: ignore[attr-defined]
    return function


@dataclass(frozen=True)
class Cart:
    lines: dict[str, CartLine]
    value: float

    @cached_property
    def count(self) -> int:
        return sum(line.qty for line in self.lines.values())

    def __contains__(self, product_id: object) -> bool:
        return product_id in self.lines

    @cached_property
    def _categories(self) -> frozenset[str]:
        return frozenset(line.category for line in self.lines.values())

    def has_category(self, category: str) -> bool:
        return category in self._categories


class Visit:
    """A read-only view of a visitor at the moment a rule runs."""

    def __init__(
        self,
        state: VisitorState,
        event: p.Event,
        site: Site,
        now_ms: int,
        segments: Mapping[str, SegmentFunction] | None = None,
    ) -> None:
        self._state = state
        self._segments = segments or {}
        self._in_segment: dict[str, bool] = {}
        self.event = event
        self.site = site
        self.now_ms = now_ms

    @cached_property
    def cart(self) -> Cart:
        return Cart(dict(self._state.session.cart), self._state.cart_value)

    def in_segment(self, name: str) -> bool:
        known = self._in_segment.get(name)
        if known is not None:
            return known
        predicate = self._segments.get(name)
        if predicate is None:
            raise KeyError(f"no segment named {name!r}")
        known = self._in_segment[name] = predicate(self)
        return known

    # Who

    @property
    def visits(self) -> int:
        """Sessions so far, this one included."""
        return self._state.profile.visits

    @property
    def is_first_visit(self) -> bool:
        return self._state.profile.visits <= 1

    @property
    def is_returning(self) -> bool:
        return self._state.profile.visits > 1

    @property
    def customer_id(self) -> str:
        return self._state.profile.customer_id

    @property
    def is_identified(self) -> bool:
        return bool(self._state.profile.customer_id)

    @property
    def device(self) -> str:
        """desktop, mobile, tablet or bot."""
        return self._state.session.device

    @property
    def locale(self) -> str:
        """The browser's language tag, e.g. 'de-AT' (navigator.language, else Accept-Language)."""
        return self._state.session.lang

    @property
    def language(self) -> str:
        """The primary language, lower case: 'de' for 'de-AT'."""
        return self._state.session.lang.split("-")[0].lower()

    @property
    def country(self) -> str:
        """ISO country code from the trusted header named by STORETAG_COUNTRY_HEADER, or ''."""
        return self._state.session.country

    # Where

    @property
    def url(self) -> str:
        return self._state.session.url

    @cached_property
    def path(self) -> str:
        return urlsplit(self._state.session.url).path or "/"

    def path_matches(self, *patterns: str) -> bool:
        """Glob patterns on the path: visit.path_matches('/products/*', '/collections/sale*')."""
        path = self.path
        return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)

    @property
    def page_type(self) -> str:
        return self._state.session.page_type

    @property
    def landing_page(self) -> str:
        return self._state.session.landing

    @property
    def referrer(self) -> str:
        return self._state.session.referrer

    @property
    def referrer_host(self) -> str:
        return (urlsplit(self._state.session.referrer).hostname or "").removeprefix("www.")

    @property
    def utm(self) -> Utm:
        return self._state.session.utm

    # When

    @property
    def pages(self) -> int:
        """Pages viewed this session."""
        return self._state.session.pages

    @property
    def time_on_site_s(self) -> float:
        """Seconds since this session started."""
        return max(0.0, (self.now_ms - self._state.session.started) / 1000)

    def _local_time(self) -> datetime:
        return datetime.fromtimestamp(self.now_ms / 1000, ZoneInfo(self.site.timezone))

    @property
    def local_hour(self) -> int:
        """0 to 23 in the site's time zone."""
        return self._local_time().hour

    @property
    def weekday(self) -> str:
        """'monday' … 'sunday' in the site's time zone."""
        return WEEKDAYS[self._local_time().weekday()]

    # What

    @property
    def slots(self) -> list[str]:
        """The recommendation slots on this page (`data-storetag-slot`), for Recs to fill."""
        return list(self._state.session.slots)

    @property
    def product(self) -> str:
        """The product this page is about ("" on other pages)."""
        return self._state.session.item

    @property
    def recently_viewed(self) -> list[str]:
        """Products viewed over all visits, most recent last."""
        return list(self._state.profile.recent)

    @cached_property
    def viewed_products(self) -> Mapping[str, int]:
        """Product id → times viewed this session (read-only)."""
        return MappingProxyType(self._state.session.products)

    @cached_property
    def viewed_categories(self) -> Mapping[str, int]:
        return MappingProxyType(self._state.session.categories)

    @property
    def checkout_started(self) -> bool:
        return self._state.session.checkout_started

    @property
    def purchased(self) -> bool:
        """Purchased in this session."""
        return self._state.session.purchased

    @property
    def has_purchased(self) -> bool:
        """Purchased ever."""
        return self._state.profile.orders > 0

    @property
    def orders(self) -> int:
        """Orders over the visitor's lifetime."""
        return self._state.profile.orders

    @property
    def revenue(self) -> float:
        """Lifetime revenue."""
        return self._state.profile.revenue

    # Web push, in this browser

    @property
    def push_subscribed(self) -> bool:
        return self._state.profile.push == "subscribed"

    @property
    def push_denied(self) -> bool:
        """The visitor refused notifications: a PushPrompt is never sent again."""
        return self._state.profile.push == "denied"
