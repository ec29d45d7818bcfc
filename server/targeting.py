"""Declarative targeting: who a rule is for, as declared in @rule(device=…, cart=…, path=…).

The engine checks these before it calls a rule, from an index on the values rules ask for, so a campaign
for other visitors costs next to nothing however many campaigns a site runs. Attributes combine with AND,
the values of one attribute with OR: `@rule(device="mobile", cart=["mug", "cup"])` is for a visitor on a
phone with a mug or a cup in the cart.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlsplit

from server.visitor import VisitorState

# Attribute → what its values are; the order is the index's preference: an attribute whose values are many
# (a product) narrows the candidates more than one with few (a device).
ATTRIBUTES: Mapping[str, str] = {
    "cart": "product ids, one of them in the cart",
    "viewed": "product ids, one of them viewed this session",
    "path": "glob patterns on the current page's path ('/sale/*')",
    "cart_category": "categories, one of them in the cart",
    "viewed_category": "categories, one of them viewed this session",
    "utm_source": "the session's utm_source (any case)",
    "country": "ISO country codes",
    "language": "language codes: 'de' for any German, 'de-AT' for Austria's",
    "device": "desktop, mobile, tablet or bot",
    "visitor": "new (first visit) or returning",
}
_CLOSED = {
    "device": frozenset({"desktop", "mobile", "tablet", "bot"}),
    "visitor": frozenset({"new", "returning"}),
}
_GLOB = re.compile(r"[*?\[]")


def _normal(attribute: str, value: str) -> str:
    if attribute in ("utm_source", "language"):
        return value.lower()
    return value.upper() if attribute == "country" else value


@dataclass(frozen=True)
class Targets:
    """Attribute → the values a visitor must have one of; empty: every visitor."""

    wants: tuple[tuple[str, frozenset[str]], ...] = ()
    # The path patterns as one regular expression, or None when the rule names no path.
    path: re.Pattern[str] | None = None
    # The attribute and values to index the rule under; None: it is checked on every batch (no targets,
    # or only path patterns with wildcards).
    anchor: tuple[str, frozenset[str]] | None = None
    # The wants other than the anchor: all that is left to check for a rule found through the index.
    rest: tuple[tuple[str, frozenset[str]], ...] = ()

    @classmethod
    def parse(cls, given: Mapping[str, str | Iterable[str]]) -> Targets:
        """From @rule's keyword arguments; unknown attributes and values fail at import."""
        wants: list[tuple[str, frozenset[str]]] = []
        for attribute, raw in given.items():
            if attribute not in ATTRIBUTES:
                raise TypeError(f"rule() got an unexpected keyword argument {attribute!r}")
            listed = list(raw) if isinstance(raw, Iterable) and not isinstance(raw, str) else [raw]
            if not listed or not all(isinstance(value, str) and value for value in listed):
                raise ValueError(f"{attribute} takes {ATTRIBUTES[attribute]}, not {raw!r}")
            if attribute == "path" and not all(glob.startswith(("/", "*")) for glob in listed):
                raise ValueError(f"path patterns match the whole path, so they start with / or *: {raw!r}")
            values = frozenset(_normal(attribute, value) for value in listed)
            allowed = _CLOSED.get(attribute)
            if allowed is not None and not values <= allowed:
                raise ValueError(
                    f"{attribute} is one of {', '.join(sorted(allowed))}, not {sorted(values - allowed)}"
                )
            wants.append((attribute, values))
        wants.sort(key=lambda want: list(ATTRIBUTES).index(want[0]))
        paths = dict(wants).get("path")
        pattern = re.compile("|".join(fnmatch.translate(glob) for glob in sorted(paths))) if paths else None
        anchor = next(
            (
                (attribute, values)
                for attribute, values in wants
                if attribute != "path" or not any(_GLOB.search(glob) for glob in values)
            ),
            None,
        )
        return cls(tuple(wants), pattern, anchor, tuple(want for want in wants if want != anchor))

    def match(self, facts: Facts, anchored: bool = False) -> bool:
        """Whether the visitor has what the rule asks for; `anchored`: its anchor is known to hold."""
        for attribute, values in self.rest if anchored else self.wants:
            if attribute == "path":
                assert self.path is not None
                if not self.path.match(facts.page_path):
                    return False
            elif values.isdisjoint(facts.of(attribute)):
                return False
        return True


class Facts:
    """A visitor's values of each attribute, each read from the state when a rule first asks for it."""

    def __init__(self, state: VisitorState) -> None:
        self._state = state

    def of(self, attribute: str) -> Collection[str]:
        values: Collection[str] = getattr(self, attribute)
        return values

    @cached_property
    def page_path(self) -> str:
        return urlsplit(self._state.session.url).path or "/"

    @property
    def path(self) -> Collection[str]:
        return (self.page_path,)

    @property
    def cart(self) -> Collection[str]:
        return self._state.session.cart.keys()

    @property
    def viewed(self) -> Collection[str]:
        return self._state.session.products.keys()

    @cached_property
    def cart_category(self) -> Collection[str]:
        return {line.category for line in self._state.session.cart.values()}

    @property
    def viewed_category(self) -> Collection[str]:
        return self._state.session.categories.keys()

    @property
    def utm_source(self) -> Collection[str]:
        return (self._state.session.utm.source.lower(),)

    @property
    def country(self) -> Collection[str]:
        return (self._state.session.country.upper(),)

    @property
    def language(self) -> Collection[str]:
        locale = self._state.session.lang.lower()
        return (locale.split("-")[0], locale)

    @property
    def device(self) -> Collection[str]:
        return (self._state.session.device,)

    @property
    def visitor(self) -> Collection[str]:
        return ("new" if self._state.profile.visits <= 1 else "returning",)
