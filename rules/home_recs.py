"""The home page's slot `home_recs`: picks for a visitor we know something about, else what is popular."""

from __future__ import annotations

from server.rules import Recs, Visit, for_you, popular, rule


@rule(on="page_view")
def home_recs(visit: Visit) -> Recs | None:
    if visit.recently_viewed or visit.cart.count:
        return Recs("home_recs", for_you(), limit=4, title="Picked for you")
    return Recs("home_recs", popular(), limit=4, title="Popular right now")
