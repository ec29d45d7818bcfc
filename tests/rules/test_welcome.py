from server.testing import Simulator


async def test_first_time_visitor_is_welcomed_on_the_second_page() -> None:
    sim = Simulator(rules=["welcome"])
    assert await sim.page_view() == []
    [popup] = await sim.page_view()
    assert popup.id == "welcome"
    assert "Welcome" in popup.html


async def test_welcome_shows_once_ever() -> None:
    sim = Simulator(rules=["welcome"])
    await sim.page_view()
    assert await sim.page_view() != []
    assert await sim.page_view() == []
    sim.advance(days=2)
    assert await sim.page_view() == []


async def test_returning_visitor_is_not_welcomed() -> None:
    sim = Simulator(rules=["welcome"])
    await sim.page_view()
    sim.advance(minutes=31)  # the first session ends after 30 idle minutes
    assert await sim.page_view() == []
    assert await sim.page_view() == []
    assert (await sim.state()).profile.visits == 2


async def test_checkout_is_never_interrupted_by_the_welcome() -> None:
    sim = Simulator(rules=["welcome"])
    await sim.page_view(page_type="home")
    assert await sim.page_view(page_type="cart") == []
    assert await sim.page_view(page_type="checkout") == []
    assert await sim.page_view(page_type="thank_you") == []
    assert await sim.page_view(page_type="home") != []


async def test_a_visitor_who_is_already_shopping_is_not_welcomed() -> None:
    sim = Simulator(rules=["welcome"])
    await sim.page_view()
    await sim.track("cart_add", id="mug", price=12)
    assert await sim.page_view(page_type="product") == []
