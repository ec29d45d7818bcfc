from server.rules import Popup, Visit, rule


@rule(on="page_view", priority=5)
def t_compete_high(visit: Visit) -> Popup | None:
    if visit.path == "/compete":
        return Popup("trigger.html", name="t_compete_high")
    return None
