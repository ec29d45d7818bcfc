"""A visitor's state (profile, current session, action history) and how events change it.

Pure functions of (state, events, now): the Redis side lives in state.py and retries them on conflict.
Every collection is bounded so a visitor's state stays small whatever a client sends.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qs, urlsplit

import msgspec

from server import protocol as p
from server.sites import Site

MAX_VIEWED = 30
MAX_CART_LINES = 50
MAX_SHOWS_KEPT = 20
MAX_BATCH_IDS = 20
BATCH_DIGEST_BYTES = 8
MAX_ORDER_IDS = 20
MAX_ACTIONS_TRACKED = 50
MAX_RECENT = 20
MAX_BOUGHT = 50
MAX_RECS_CLICKED = 20

_MOBILE = re.compile(r"Mobi|iPhone|iPod|Android.+Mobile|Windows Phone", re.I)
_TABLET = re.compile(r"iPad|Tablet|Android(?!.*Mobile)|Silk|Kindle", re.I)
_BOT = re.compile(r"bot|crawl|spider|slurp|headless(?!chrome)|lighthouse", re.I)


class Utm(msgspec.Struct, omit_defaults=True):
    source: str = ""
    medium: str = ""
    campaign: str = ""


class CartLine(msgspec.Struct, omit_defaults=True):
    qty: int
    price: float = 0.0
    name: str = ""
    category: str = ""


class Session(msgspec.Struct, omit_defaults=True):
    id: str = ""
    started: int = 0
    last_seen: int = 0
    pages: int = 0
    landing: str = ""
    referrer: str = ""
    utm: Utm = msgspec.field(default_factory=Utm)
    device: str = "desktop"
    lang: str = ""
    country: str = ""
    page_type: str = ""
    url: str = ""
    # Item id → times viewed this session, most recent last.
    products: dict[str, int] = {}
    categories: dict[str, int] = {}
    cart: dict[str, CartLine] = {}
    checkout_started: bool = False
    purchased: bool = False
    orders: int = 0
    revenue: float = 0.0
    # The recommendation slots on the current page and its product, for rules that fill slots.
    slots: list[str] = []
    item: str = ""
    # Recommended item clicked → "SLOT STRATEGY", so a purchase of it is credited to that slot.
    recs_clicked: dict[str, str] = {}
    # Actions on a later trigger this session's answers gave, not shown or withdrawn since: all that the
    # visitor's pages (in any tab) may hold armed.
    armed: list[str] = []


class Profile(msgspec.Struct, omit_defaults=True):
    first_seen: int = 0
    last_seen: int = 0
    visits: int = 0
    customer_id: str = ""
    orders: int = 0
    revenue: float = 0.0
    # Products viewed and bought over all sessions, most recent last.
    recent: list[str] = []
    bought: list[str] = []
    # Web push in this browser: "subscribed", "unsubscribed", "denied" (the visitor refused) or
    # "unsupported" (the browser cannot); "" until one is reported.
    push: str = ""
    # When the latest push a rule scheduled for this visitor is due (epoch ms); 0 if none ever was.
    push_due: int = 0


class ActionHistory(msgspec.Struct, omit_defaults=True):
    # Times it was shown, newest last (enough for every cap window).
    shown: list[int] = []
    clicked: int = 0
    closed: int = 0
    last_clicked: int = 0
    last_closed: int = 0
    # When the visitor clicked it or redeemed its code; 0 until then.
    converted: int = 0


class IssuedCode(msgspec.Struct):
    code: str
    expires: int


class VisitorState(msgspec.Struct, omit_defaults=True):
    profile: Profile = msgspec.field(default_factory=Profile)
    session: Session = msgspec.field(default_factory=Session)
    actions: dict[str, ActionHistory] = {}
    # The latest MAX_BATCH_IDS batch ids, each as an 8-byte hash, concatenated: a batch resent while it
    # is among them is not applied again. (`batches`: the ids in full, as states written before kept them.)
    seen: bytes = b""
    batches: list[str] = []
    # Recent order ids: a thank-you page reloaded sends its purchase again.
    order_ids: list[str] = []
    # Rule id → the discount code this visitor was given by that rule's offer.
    codes: dict[str, IssuedCode] = {}

    def saw_batch(self, batch_id: str) -> bool:
        digest = batch_digest(batch_id)
        seen = self.seen
        return batch_id in self.batches or any(
            seen[i : i + BATCH_DIGEST_BYTES] == digest for i in range(0, len(seen), BATCH_DIGEST_BYTES)
        )

    def record_batch(self, batch_id: str) -> None:
        old = b"".join(batch_digest(old_id) for old_id in self.batches)
        self.seen = (old + self.seen + batch_digest(batch_id))[-MAX_BATCH_IDS * BATCH_DIGEST_BYTES :]
        self.batches = []

    @property
    def cart_value(self) -> float:
        return round(sum(line.qty * line.price for line in self.session.cart.values()), 2)


def batch_digest(batch_id: str) -> bytes:
    return hashlib.blake2b(batch_id.encode(), digest_size=BATCH_DIGEST_BYTES).digest()


def device_class(user_agent: str) -> str:
    if _BOT.search(user_agent):
        return "bot"
    if _MOBILE.search(user_agent):
        return "mobile"
    if _TABLET.search(user_agent):
        return "tablet"
    return "desktop"


def _utm(url: str) -> Utm:
    query = parse_qs(urlsplit(url).query)
    return Utm(
        source=query.get("utm_source", [""])[0][:100],
        medium=query.get("utm_medium", [""])[0][:100],
        campaign=query.get("utm_campaign", [""])[0][:100],
    )


def _first_language(accept_language: str) -> str:
    """'de-AT,de;q=0.9,en;q=0.5' → 'de-AT'."""
    first = accept_language.split(",")[0].split(";")[0].strip()
    return first[:35] if re.fullmatch(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*", first) else ""


def _latest(items: list[str], new: list[str], keep: int) -> list[str]:
    fresh = set(new)
    return [*(item for item in items if item not in fresh), *new][-keep:]


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.pop(key, 0) + 1  # re-insert: the most recent stays last
    while len(counts) > MAX_VIEWED:
        del counts[next(iter(counts))]


class Context(msgspec.Struct, frozen=True):
    """What the server knows about a request beyond its events."""

    site: Site
    session_id: str
    now_ms: int
    session_timeout_ms: int
    user_agent: str = ""
    accept_language: str = ""
    country: str = ""
    # Known action ids (the rules): events about anything else are not stored.
    action_ids: frozenset[str] = frozenset()


def _touch(state: VisitorState, ctx: Context, first_event: p.Event | None) -> None:
    session, profile = state.session, state.profile
    if not profile.first_seen:
        profile.first_seen = ctx.now_ms
    idle = ctx.now_ms - session.last_seen
    if not session.started or idle > ctx.session_timeout_ms:
        landing = first_event.url if first_event else ""
        state.session = session = Session(
            id=ctx.session_id,
            started=ctx.now_ms,
            landing=landing,
            referrer=first_event.ref if first_event else "",
            utm=_utm(landing),
            device=device_class(ctx.user_agent),
            lang=_first_language(ctx.accept_language),
            country=ctx.country,
            cart=session.cart,  # the shop keeps a cart across visits, so do we
        )
        profile.visits += 1
    session.last_seen = profile.last_seen = ctx.now_ms


def _apply(state: VisitorState, event: p.Event, ctx: Context) -> bool:
    """Applies one event; False when it changes nothing (a repeated order, an unknown action)."""
    session, profile, now = state.session, state.profile, ctx.now_ms
    match event:
        case p.PageView(props=props):
            session.pages += 1
            session.url = event.url
            session.page_type = props.page_type
            session.lang = props.lang or session.lang
            session.slots, session.item = list(props.slots), ""
        case p.ProductView(props=props):
            _bump(session.products, props.id)
            session.item = props.id
            profile.recent = _latest(profile.recent, [props.id], MAX_RECENT)
            if props.category:
                _bump(session.categories, props.category)
        case p.CategoryView(props=props):
            _bump(session.categories, props.id)
        case p.CartAdd(props=props):
            line = session.cart.get(props.id)
            if line is None and len(session.cart) >= MAX_CART_LINES:
                return False
            qty = min((line.qty if line else 0) + props.qty, 10_000)
            session.cart[props.id] = CartLine(qty, props.price, props.name, props.category)
        case p.CartRemove(props=props):
            line = session.cart.get(props.id)
            if line is not None:
                line.qty -= props.qty
                if line.qty <= 0:
                    del session.cart[props.id]
        case p.CheckoutStart():
            session.checkout_started = True
        case p.Purchase(props=props):
            if props.order_id in state.order_ids:
                return False
            state.order_ids = [*state.order_ids, props.order_id][-MAX_ORDER_IDS:]
            session.purchased = True
            session.orders += 1
            session.revenue = round(session.revenue + props.value, 2)
            profile.orders += 1
            profile.revenue = round(profile.revenue + props.value, 2)
            for rule_id, issued in state.codes.items():
                if props.code and issued.code == props.code.upper():
                    _history(state, rule_id).converted = now
            profile.bought = _latest(profile.bought, [line.id for line in props.items], MAX_BOUGHT)
            session.cart = {}
            session.checkout_started = False
        case p.Identify(props=props):
            if ctx.site.verifies_customer(props.customer_id, props.signature):
                profile.customer_id = props.customer_id
        case p.ActionShown(props=props) if props.action in ctx.action_ids:
            history = _history(state, props.action)
            history.shown = [*history.shown, now][-MAX_SHOWS_KEPT:]
            if props.action in session.armed:  # a trigger fires once
                session.armed = [rule_id for rule_id in session.armed if rule_id != props.action]
        case p.ActionClicked(props=props) if props.action in ctx.action_ids:
            history = _history(state, props.action)
            history.clicked += 1
            history.last_clicked = now
            history.converted = history.converted or now
        case p.ActionClosed(props=props) if props.action in ctx.action_ids:
            history = _history(state, props.action)
            history.closed += 1
            history.last_closed = now
        case p.ActionShown() | p.ActionClicked() | p.ActionClosed():
            return False
        case p.PushSubscribed():
            profile.push = "subscribed"
        case p.PushUnsubscribed():
            profile.push = "unsubscribed"
        case p.PushDenied(props=props):
            profile.push = "unsupported" if props.reason == "unsupported" else "denied"
        case p.RecsClicked(props=props):
            session.recs_clicked.pop(props.item, None)
            session.recs_clicked[props.item] = f"{props.slot} {props.strategy}"
            while len(session.recs_clicked) > MAX_RECS_CLICKED:
                del session.recs_clicked[next(iter(session.recs_clicked))]
    return True


def _history(state: VisitorState, action_id: str) -> ActionHistory:
    history = state.actions.get(action_id)
    if history is None:
        history = state.actions[action_id] = ActionHistory()
        while len(state.actions) > MAX_ACTIONS_TRACKED:
            del state.actions[next(iter(state.actions))]
    return history


def apply_events(state: VisitorState, batch: p.EventBatch, ctx: Context) -> list[p.Event]:
    """Applies a batch in place and returns the events that took effect (none for a retried batch)."""
    if batch.batch is not None:
        if state.saw_batch(batch.batch):
            return []
        state.record_batch(batch.batch)
    _touch(state, ctx, batch.events[0] if batch.events else None)
    return [event for event in batch.events if _apply(state, event, ctx)]


state_encoder = msgspec.msgpack.Encoder()
state_decoder = msgspec.msgpack.Decoder(VisitorState)
