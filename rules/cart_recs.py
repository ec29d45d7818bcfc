"""The cart page's slot `cart_recs`: what others bought together with what is in the cart."""

from __future__ import annotations

from server.rules import Recs, Visit, bought_together, rule


@rule(on="page_view")
def cart_recs(visit: Visit) -> Recs | None:
    if not visit.cart.count:
        return None
    return Recs("cart_recs", bought_together(), limit=4, title="Goes well with your cart")
