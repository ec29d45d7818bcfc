from server.rules import Popup, Visit, rule


@rule(on=["page_view", "cart_add"], trigger="scroll:50")
def t_scroll(visit: Visit) -> Popup | None:
    if visit.path == "/scroll":
        return Popup("trigger.html", name="t_scroll")
    return None
