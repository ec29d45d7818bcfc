from server.rules import Popup, Visit, rule


@rule(on=["page_view", "cart_add"], trigger="delay:3", expires="1s")
def t_expiring(visit: Visit) -> Popup | None:
    if visit.path == "/expiring":
        return Popup("trigger.html", name="t_expiring")
    return None
