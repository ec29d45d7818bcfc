from server.testing import PUSH_SITE, Simulator


async def test_a_product_viewed_twice_and_left_gets_a_push_two_hours_later() -> None:
    sim = Simulator(rules=["browse_abandonment"], site=PUSH_SITE)
    await sim.subscribe_push()
    await sim.product_page("lamp")
    assert await sim.scheduled_pushes() == []
    await sim.product_page("lamp")
    [push] = await sim.scheduled_pushes()
    assert push.rule == "browse_abandonment" and push.due_in_s == 2 * 3600
    assert push.url == "https://shop.test/p/lamp"
    sim.advance(hours=2)
    [sent] = await sim.send_due_pushes()
    assert sent.url == "https://shop.test/p/lamp"


async def test_putting_something_in_the_cart_cancels_it() -> None:
    sim = Simulator(rules=["browse_abandonment"], site=PUSH_SITE)
    await sim.subscribe_push()
    await sim.product_page("lamp")
    await sim.product_page("lamp")
    await sim.track("cart_add", id="lamp", price=30)
    assert await sim.scheduled_pushes() == []
    sim.advance(hours=3)
    assert await sim.send_due_pushes() == []


async def test_a_visitor_with_a_cart_is_left_to_the_abandoned_cart_push() -> None:
    sim = Simulator(rules=["browse_abandonment"], site=PUSH_SITE)
    await sim.subscribe_push()
    await sim.track("cart_add", id="mug", price=12)
    await sim.product_page("lamp")
    await sim.product_page("lamp")
    assert await sim.scheduled_pushes() == []
