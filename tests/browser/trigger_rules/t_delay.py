from server.rules import Popup, Visit, rule


@rule(on=["page_view", "cart_add"], trigger="delay:2")
def t_delay(visit: Visit) -> Popup | None:
    if visit.path == "/delay":
        return Popup("trigger.html", name="t_delay")
    return None
