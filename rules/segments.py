"""Segments: named predicates on a visit, defined once and read by rules with visit.in_segment(name) or
@rule(segment=name)."""

from __future__ import annotations

from server.rules import Visit, segment


@segment
def cart_worth_saving(visit: Visit) -> bool:
    """A cart big enough that a discount pays for itself."""
    return visit.cart.value >= float(visit.site.settings.get("rescue_carts_over", 30))


@segment
def loyal_customer(visit: Visit) -> bool:
    return visit.orders >= 3 or visit.revenue >= 300
