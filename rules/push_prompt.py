"""The soft prompt for web push, once a visitor shows interest: on their second product view of a session,
while browsing (one with a cart is on the way to checkout and not interrupted). "Not now" keeps it away for
a week; it asks at most twice a month. The engine never sends it to a visitor who is subscribed already or
refused notifications."""

from __future__ import annotations

from server.rules import PushPrompt, Visit, rule


@rule(on="product_view", cap=["1/session", "2/30d"], cooldown_after_close="7d", priority=5)
def push_prompt(visit: Visit) -> PushPrompt | None:
    if sum(visit.viewed_products.values()) >= 2 and visit.cart.count == 0:
        return PushPrompt("push_prompt.html", title="Shall we keep you posted?")
    return None
