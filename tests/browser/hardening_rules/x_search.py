"""Echoes a search query into HTML."""

from server.rules import Popup, Visit, rule


@rule(on="search", trigger="idle:0", priority=10)
def x_search(visit: Visit) -> Popup | None:
    if visit.path != "/xss":
        return None
    fields = {"search query": visit.event.props.query}  # type: ignore[union-attr]
    return Popup("echo.html", rule="x_search", fields=fields)
