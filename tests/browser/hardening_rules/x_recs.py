"""Fills a slot with the products this visitor viewed: catalog titles (imported, or learnt from a product
view) reach HTML through the recommendation renderer."""

from server.rules import Recs, Visit, recently_viewed, rule


@rule(on="page_view")
def x_recs(visit: Visit) -> Recs | None:
    if visit.path != "/xss":
        return None
    return Recs("xss-recs", recently_viewed(fallback=False), limit=4, title="Viewed")
