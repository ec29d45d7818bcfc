"""A welcome pop-up for first-time visitors once they have seen two pages, never in the checkout flow."""

from __future__ import annotations

from server.rules import Popup, Visit, rule


@rule(on="page_view", cap="1/ever")
def welcome(visit: Visit) -> Popup | None:
    if visit.is_first_visit and visit.pages >= 2 and visit.page_type not in ("checkout", "thank_you"):
        return Popup("welcome.html", title="Welcome! First time here?")
    return None
