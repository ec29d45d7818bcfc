"""Nudges a cart that is close to the free-shipping threshold (the site setting `free_shipping_over`)."""

from __future__ import annotations

from server.rules import Popup, Visit, rule

NUDGE_WITHIN = 0.3  # start nudging when the cart is within 30 % of the threshold


@rule(on=["cart_add", "cart_remove", "page_view"], cap="1/session", priority=5)
def free_shipping(visit: Visit) -> Popup | None:
    if visit.page_type in ("checkout", "thank_you"):
        return None
    threshold = float(visit.site.settings.get("free_shipping_over", 0))
    missing = round(threshold - visit.cart.value, 2)
    if threshold and 0 < missing <= threshold * NUDGE_WITHIN:
        return Popup("free_shipping.html", missing=missing, currency=visit.site.currency)
    return None
