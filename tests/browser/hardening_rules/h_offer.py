from server.rules import Offer, Visit, rule


@rule(on="page_view")
def h_offer(visit: Visit) -> Offer | None:
    if visit.path == "/csp/offer":
        return Offer("cart_rescue.html", percent=10, prefix="CSP", valid="2h")
    return None
