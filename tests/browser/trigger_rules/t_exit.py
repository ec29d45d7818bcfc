from server.rules import Popup, Visit, rule


@rule(on=["page_view", "cart_add"], trigger="exit_intent", cap="1/session")
def t_exit(visit: Visit) -> Popup | None:
    if visit.path == "/exit":
        return Popup("trigger.html", name="t_exit")
    return None
