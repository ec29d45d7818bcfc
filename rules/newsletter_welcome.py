"""Readers who come from the shop's newsletter get a thank-you code on the shop's pages (never in the
checkout flow), once a session. A campaign for one traffic source: its targeting is declared in @rule, so
the engine never calls it for anyone else."""

from __future__ import annotations

from server.rules import Offer, Visit, rule


@rule(
    on="page_view",
    utm_source="newsletter",
    page=["home", "category", "product"],
    cap="1/session",
    priority=15,
    expires="30m",
)
def newsletter_welcome(visit: Visit) -> Offer | None:
    return Offer("newsletter_welcome.html", percent=10, prefix="NEWS10", valid="1d")
