"""An exit-intent offer for a cart worth saving: a single-use 10 % code, valid for two hours."""

from __future__ import annotations

from server.rules import Offer, Visit, rule


@rule(
    on=["page_view", "cart_add", "cart_remove"],
    trigger="exit_intent",
    segment="cart_worth_saving",
    cap="1/day",
    until_converted=True,
    priority=20,
    expires="30m",
)
def cart_rescue(visit: Visit) -> Offer | None:
    if visit.purchased or visit.page_type in ("checkout", "thank_you") or visit.in_segment("loyal_customer"):
        return None
    return Offer("cart_rescue.html", percent=10, prefix="STAY10", valid="2h")
