"""The product page's slot `product_recs`: what other visitors viewed in the same sessions as this product."""

from __future__ import annotations

from server.rules import Recs, Visit, rule, viewed_together


@rule(on="page_view")
def product_recs(visit: Visit) -> Recs | None:
    return Recs("product_recs", viewed_together(), limit=4, title="Customers also viewed")
