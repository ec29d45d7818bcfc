"""A welcome pop-up for first-time visitors browsing a second page: not for one who is already shopping
(a cart) and never in the checkout flow."""

from __future__ import annotations

from server.rules import Popup, Visit, rule


@rule(on="page_view", cap="1/ever", visitor="new")
def welcome(visit: Visit) -> Popup | None:
    shopping = visit.cart.count > 0 or visit.page_type in ("cart", "checkout", "thank_you")
    if visit.pages >= 2 and not shopping:
        return Popup("welcome.html", title="Welcome! First time here?")
    return None
