"""Thanks the visitor after each purchase."""

from __future__ import annotations

from server.rules import Popup, Visit, rule


@rule(on="purchase", priority=10, transactional=True)
def thank_you(visit: Visit) -> Popup | None:
    return Popup("thank_you.html", first_order=visit.orders == 1)
