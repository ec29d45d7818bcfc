from server.rules import Popup, Visit, rule


@rule(on=["page_view", "cart_add"], trigger="click:#buy")
def t_click(visit: Visit) -> Popup | None:
    if visit.path == "/click":
        return Popup("trigger.html", name="t_click")
    return None
