from server.rules import Popup, Visit, rule


@rule(on=["page_view", "cart_add"], trigger="idle:2")
def t_idle(visit: Visit) -> Popup | None:
    if visit.path == "/idle":
        return Popup("trigger.html", name="t_idle")
    return None
