from server.rules import Popup, Visit, rule


@rule(on="page_view", priority=1)
def t_compete_low(visit: Visit) -> Popup | None:
    if visit.path == "/compete":
        return Popup("trigger.html", name="t_compete_low")
    return None
