from server import protocol as p
from server.testing import Simulator


async def test_cart_close_to_the_threshold_gets_a_nudge_with_the_missing_amount() -> None:
    sim = Simulator(rules=["free_shipping"])
    assert await sim.track("cart_add", id="mug", price=20) == []
    [nudge] = await sim.track("cart_add", id="tee", price=24)
    assert nudge.id == "free_shipping"
    assert "6.00 EUR" in nudge.html


async def test_cart_far_from_or_over_the_threshold_gets_no_nudge() -> None:
    sim = Simulator(rules=["free_shipping"])
    assert await sim.track("cart_add", id="mug", price=10) == []
    assert await sim.track("cart_add", id="lamp", price=45) == []


async def test_nudge_shows_once_per_session() -> None:
    sim = Simulator(rules=["free_shipping"])
    assert await sim.track("cart_add", id="tee", price=40) != []
    assert await sim.track("cart_add", id="pin", price=1) == []
    sim.advance(minutes=45)
    assert await sim.track("cart_add", id="pin", price=1) != []


async def test_checkout_is_never_interrupted_by_the_nudge() -> None:
    sim = Simulator(rules=["free_shipping"])
    await sim.track("cart_add", id="tee", price=40)  # shown here, capped for the session
    sim.advance(minutes=45)
    assert await sim.page_view(page_type="checkout") == []
    assert await sim.page_view(page_type="cart") != []


async def test_a_first_time_visitor_with_a_cart_gets_the_nudge_rather_than_the_welcome() -> None:
    sim = Simulator(rules=["free_shipping", "welcome"])
    await sim.page_view()
    [action] = await sim.send(p.CartAdd(props=p.CartLineProps("tee", price=40)), p.PageView())
    assert action.id == "free_shipping"
    assert await sim.page_view() == []
