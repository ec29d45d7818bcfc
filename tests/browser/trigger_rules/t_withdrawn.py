from server.rules import Popup, Visit, rule


@rule(on=["page_view", "cart_add"], trigger="delay:2")
def t_withdrawn(visit: Visit) -> Popup | None:
    if visit.path == "/withdrawn" and visit.cart.count == 0:
        return Popup("trigger.html", name="t_withdrawn")
    return None
