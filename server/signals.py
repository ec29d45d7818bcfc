"""What a batch of events teaches the recommender: a pure function of the visitor's state and events.

Called with the state as written after the batch, and the events that took effect (a retried batch or a
repeated order teaches nothing). Weights: a view counts 1, a cart add 3, a purchase 5 for popularity;
co-occurrence pairs each newly viewed item with the visitor's last few viewed items (viewed together),
and the items of one cart or order with each other and an order with the visitor's last purchases
(bought together).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field

from server import protocol as p
from server.catalog import Product, seen_in
from server.recs_store import Increment
from server.visitor import VisitorState

VIEW, CART, BUY = 1.0, 3.0, 5.0
# How many of the visitor's latest items a new one is paired with.
PAIR_WITH_VIEWED = 5
PAIR_WITH_BOUGHT = 5
CART_PAIR, ORDER_PAIR, HISTORY_PAIR = 0.5, 1.0, 0.5


@dataclass
class Lessons:
    signals: list[Increment] = field(default_factory=list)
    # Attribution counters: "SLOT STRATEGY METRIC" → amount.
    counts: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    sightings: dict[str, Product] = field(default_factory=dict)
    _paired: set[tuple[str, str, str, float]] = field(default_factory=set)

    def popular(self, item: str, category: str, weight: float) -> None:
        self.signals += [("pop", "all", item, weight), ("hot", "all", item, weight)]
        if category:
            self.signals.append(("pop", f"c:{category}", item, weight))

    def pair(self, family: str, a: str, others: Iterable[str], weight: float) -> None:
        """Counts a together with each of the others, once per batch and kind of evidence whichever of the
        two comes first."""
        for b in others:
            key = (family, a, b, weight) if a < b else (family, b, a, weight)
            if a != b and key not in self._paired:
                self._paired.add(key)
                self.signals += [(family, a, b, weight), (family, b, a, weight)]


def learn(
    state: VisitorState, events: Sequence[p.Event], currency: str, sighted: Container[str] = ()
) -> Lessons:
    """`sighted`: products whose sighting is already on its way (in the same flush), not made again."""
    lessons = Lessons()
    session = state.session
    views: dict[str, int] = {}
    for event in events:
        if isinstance(event, p.ProductView):
            views[event.props.id] = views.get(event.props.id, 0) + 1
    # The latest viewed items, one more than pairs need: the item paired may be among them.
    viewed = list(session.products)[-PAIR_WITH_VIEWED - 1 :] if views else []
    for event in events:
        match event:
            case p.ProductView(props=props):
                lessons.popular(props.id, props.category, VIEW)
                if props.id not in lessons.sightings and props.id not in sighted:
                    lessons.sightings[props.id] = seen_in(props, event.url, currency)
                # Co-occurrence counts an item once per session: its first view, which may be in this batch.
                if session.products.get(props.id) == views.pop(props.id, None):
                    lessons.signals.append(("vn", "n", props.id, VIEW))
                    others = [item for item in viewed if item != props.id][-PAIR_WITH_VIEWED:]
                    lessons.pair("vt", props.id, others, VIEW)
            case p.CartAdd(props=props):
                lessons.popular(props.id, props.category, CART)
                line = session.cart.get(props.id)
                if line is not None and line.qty == props.qty:  # new in this cart
                    lessons.signals.append(("bn", "n", props.id, CART_PAIR))
                    lessons.pair("bt", props.id, session.cart, CART_PAIR)
            case p.Purchase(props=props):
                _purchase(lessons, state, props)
            case p.RecsShown(props=props):
                lessons.counts[f"{props.slot} {props.strategy} shown"] += 1
            case p.RecsClicked(props=props):
                lessons.counts[f"{props.slot} {props.strategy} clicks"] += 1
    return lessons


def _purchase(lessons: Lessons, state: VisitorState, props: p.PurchaseProps) -> None:
    order = list(dict.fromkeys(line.id for line in props.items))
    earlier = [item for item in state.profile.bought if item not in order][-PAIR_WITH_BOUGHT:]
    for index, item in enumerate(order):
        line = next(line for line in props.items if line.id == item)
        lessons.popular(item, line.category, BUY)
        lessons.signals.append(("bn", "n", item, ORDER_PAIR))
        lessons.pair("bt", item, order[index + 1 :], ORDER_PAIR)
        lessons.pair("bt", item, earlier, HISTORY_PAIR)
    # A purchase of an item recommended and clicked in this session is credited to its slot.
    credited: set[str] = set()
    for line in props.items:
        source = state.session.recs_clicked.get(line.id)
        if source is None:
            continue
        lessons.counts[f"{source} revenue"] += round(line.price * line.qty, 2)
        if source not in credited:
            credited.add(source)
            lessons.counts[f"{source} orders"] += 1
