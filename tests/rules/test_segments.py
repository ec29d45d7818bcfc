from server.testing import Simulator


async def test_segments_read_the_cart_and_the_order_history() -> None:
    sim = Simulator(rules=[])
    await sim.track("cart_add", id="lamp", price=29)
    visit = await sim.visit()
    assert not visit.in_segment("cart_worth_saving") and not visit.in_segment("loyal_customer")
    await sim.track("cart_add", id="pin", price=1)
    assert (await sim.visit()).in_segment("cart_worth_saving")
    await sim.track("purchase", order_id="big", value=300)
    assert (await sim.visit()).in_segment("loyal_customer")
