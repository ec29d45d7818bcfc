"""Echoes what a page view carries into HTML: the page title, and the session's UTM, referrer and landing."""

from server.rules import Popup, Visit, rule


@rule(on="page_view", priority=10)
def x_page_view(visit: Visit) -> Popup | None:
    if visit.path != "/xss":
        return None
    fields = {
        "page title": visit.event.props.title,  # type: ignore[union-attr]
        "utm source": visit.utm.source,
        "utm medium": visit.utm.medium,
        "utm campaign": visit.utm.campaign,
        "referrer": visit.referrer,
        "landing page": visit.landing_page,
    }
    return Popup("echo.html", rule="x_page_view", fields=fields)
