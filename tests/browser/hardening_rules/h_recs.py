from server.rules import Recs, Visit, recently_viewed, rule


@rule(on="page_view")
def h_recs(visit: Visit) -> Recs | None:
    if visit.path == "/csp/recs":
        return Recs("csp-recs", recently_viewed(fallback=False), limit=4, title="Viewed under a strict CSP")
    return None
