"""Echoes a product view's name and category into HTML. Each echo rule has a trigger slot of its own (all
fire at once), so one answer shows all four, one after another."""

from server.rules import Popup, Visit, rule


@rule(on="product_view", trigger="delay:0", priority=10)
def x_product_view(visit: Visit) -> Popup | None:
    if visit.path != "/xss":
        return None
    props = visit.event.props
    fields = {"product name": props.name, "product category": props.category}  # type: ignore[union-attr]
    return Popup("echo.html", rule="x_product_view", fields=fields)
