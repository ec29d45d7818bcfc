"""Echoes the names and categories of the cart's lines into HTML."""

from server.rules import Popup, Visit, rule


@rule(on="cart_add", trigger="scroll:0", priority=10)
def x_cart_add(visit: Visit) -> Popup | None:
    if visit.path != "/xss":
        return None
    [line] = visit.cart.lines.values()
    fields = {"cart line name": line.name, "cart line category": line.category}
    return Popup("echo.html", rule="x_cart_add", fields=fields)
