from server.testing import Simulator


async def test_every_purchase_is_thanked_and_a_first_order_is_named_as_such() -> None:
    sim = Simulator(rules=["thank_you"])
    [first] = await sim.track("purchase", order_id="A1", value=30)
    assert "first order" in first.html
    [second] = await sim.track("purchase", order_id="A2", value=12)
    assert "again" in second.html


async def test_nothing_is_said_before_a_purchase() -> None:
    sim = Simulator(rules=["thank_you"])
    assert await sim.page_view() == []
    assert await sim.track("checkout_start") == []


async def test_a_reloaded_thank_you_page_neither_thanks_nor_counts_twice() -> None:
    sim = Simulator(rules=["thank_you"])
    assert await sim.track("purchase", order_id="A1", value=30) != []
    assert await sim.track("purchase", order_id="A1", value=30) == []
    assert (await sim.state()).profile.orders == 1
