"""A web push two hours after a visitor kept coming back to one product without putting it in the cart,
unless they add something to the cart or buy first."""

from __future__ import annotations

from server.rules import Push, Visit, rule

VIEWS = 2


@rule(on="product_view", cap="1/7d")
def browse_abandonment(visit: Visit) -> Push | None:
    if visit.cart.count or visit.purchased or visit.viewed_products.get(visit.product, 0) < VIEWS:
        return None
    return Push(
        "Still thinking it over?",
        "The product you looked at is still there. Take another look.",
        url=visit.url,
        after="2h",
        unless=("cart_add", "purchase"),
    )
