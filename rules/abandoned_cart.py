"""A web push half an hour after the visitor left items in the cart, unless they buy or empty it first."""

from __future__ import annotations

from server.rules import Push, Visit, rule


@rule(on=["cart_add", "cart_remove"], cap="1/day")
def abandoned_cart(visit: Visit) -> Push | None:
    if visit.cart.count == 0 or visit.purchased:
        return None
    items = "1 item" if visit.cart.count == 1 else f"{visit.cart.count} items"
    return Push(
        "You left something in your cart",
        f"{items} worth {visit.cart.value:.2f} {visit.site.currency} are waiting for you.",
        url="/cart",  # the service worker opens it on the shop's origin
        after="30m",
        unless=("purchase", "cart_emptied"),
    )
