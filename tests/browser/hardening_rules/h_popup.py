from server.rules import Popup, Visit, rule


@rule(on="page_view")
def h_popup(visit: Visit) -> Popup | None:
    if visit.path == "/csp/popup":
        return Popup("welcome.html", title="Welcome under a strict CSP")
    return None
