"""What a rule asks for a recommendation slot: which strategy, which template, how many (re-exported by
server.rules, the only module rules import).

    @rule(on="page_view")
    def product_recs(visit: Visit) -> Recs | None:
        return Recs("pdp-similar", viewed_together(), template="recs.html", limit=4, title="Viewed together")

Each strategy is a function returning a Strategy value; the server computes it when it fills the slot.
Unless `fallback=False`, a list that comes up short is filled from the next strategy of its chain
(for you → viewed together → category popular → popular), so a slot is never empty on a site with traffic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

STRATEGIES = (
    "recently_viewed",
    "popular",
    "category_popular",
    "trending",
    "viewed_together",
    "bought_together",
    "similar",
    "for_you",
)
_SLOT = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
MAX_LIMIT = 20


@dataclass(frozen=True)
class Strategy:
    name: str
    # The product the list is about; None means the page's product (or the visitor's latest).
    item: str | None = None
    # For category_popular; None means the item's category (or the visitor's latest).
    category: str | None = None
    fallback: bool = True

    def __post_init__(self) -> None:
        if self.name not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.name!r}; known: {', '.join(STRATEGIES)}")


def recently_viewed(*, fallback: bool = True) -> Strategy:
    """What this visitor viewed, most recent first, over all their visits."""
    return Strategy("recently_viewed", fallback=fallback)


def popular(category: str | None = None, *, fallback: bool = True) -> Strategy:
    """Most viewed, carted and bought lately (a week's half-life), site-wide or in one category."""
    if category is not None:
        return Strategy("category_popular", category=category, fallback=fallback)
    return Strategy("popular", fallback=fallback)


def category_popular(category: str | None = None, *, fallback: bool = True) -> Strategy:
    """Popular in the category of the page's product (or the one the visitor looked at last)."""
    return Strategy("category_popular", category=category, fallback=fallback)


def trending(*, fallback: bool = True) -> Strategy:
    """Rising: popular over the last day far beyond its own usual level."""
    return Strategy("trending", fallback=fallback)


def viewed_together(item: str | None = None, *, fallback: bool = True) -> Strategy:
    """Viewed in the same sessions as the item, normalised so that best-sellers do not always win."""
    return Strategy("viewed_together", item=item, fallback=fallback)


def bought_together(item: str | None = None, *, fallback: bool = True) -> Strategy:
    """Bought with the item (in one order or cart, or by one customer); without an item, with the cart."""
    return Strategy("bought_together", item=item, fallback=fallback)


def similar(item: str | None = None, *, fallback: bool = True) -> Strategy:
    """Same category and price band, same brand first, popular first."""
    return Strategy("similar", item=item, fallback=fallback)


def for_you(*, fallback: bool = True) -> Strategy:
    """A blend of the neighbours of what the visitor viewed, carted and bought lately."""
    return Strategy("for_you", fallback=fallback)


@dataclass(frozen=True, init=False)
class Recs:
    """Fills the page's slot `<div data-storetag-slot="SLOT">` with up to `limit` products, drawn by a jinja2
    template from rules/templates/ that gets `items`, `slot`, `strategy`, `site` and these values."""

    slot: str
    strategy: Strategy
    template: str
    limit: int
    values: dict[str, Any] = field(default_factory=dict)
    kind = "recs"

    def __init__(
        self, slot: str, strategy: Strategy | str, template: str = "recs.html", limit: int = 4, **values: Any
    ) -> None:
        if not _SLOT.match(slot):
            raise ValueError(f"slot {slot!r} must be 1-40 letters, digits, '-' or '_'")
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1..{MAX_LIMIT}")
        object.__setattr__(self, "slot", slot)
        object.__setattr__(self, "strategy", Strategy(strategy) if isinstance(strategy, str) else strategy)
        object.__setattr__(self, "template", template)
        object.__setattr__(self, "limit", limit)
        object.__setattr__(self, "values", values)
