"""Stands in for a server crashing at the worst moment: the state is written, the answer not yet sent. The
pop-up's template is drawn after the write, and drawing this one stalls."""

from __future__ import annotations

import time

from server.rules import Popup, Visit, rule


class Stall:
    def __html__(self) -> str:
        time.sleep(30)  # the test kills the server long before
        return ""


@rule(on="product_view")
def f_stall(visit: Visit) -> Popup | None:
    if visit.event.props.id == "stall":  # type: ignore[union-attr]
        return Popup("f_stall.html", stall=Stall())
    return None
