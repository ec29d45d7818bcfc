"""Stands in for a server crashing at the worst moment: the state is written, the answer not yet sent."""

from __future__ import annotations

import time

from server.rules import Popup, Visit, rule


@rule(on="product_view")
def f_stall(visit: Visit) -> Popup | None:
    if visit.event.props.id == "stall":  # type: ignore[union-attr]
        time.sleep(30)  # the test kills the server long before
    return None
