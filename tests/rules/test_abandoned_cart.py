from server.testing import PUSH_SITE, Simulator


async def test_a_subscribed_visitor_with_a_cart_gets_a_push_half_an_hour_later() -> None:
    sim = Simulator(rules=["abandoned_cart"], site=PUSH_SITE)
    await sim.subscribe_push()
    assert await sim.track("cart_add", id="mug", price=12, qty=2) == []  # a push, not a pop-up
    [push] = await sim.scheduled_pushes()
    assert push.rule == "abandoned_cart" and push.due_in_s == 30 * 60
    assert "2 items worth 24.00 EUR" in push.body and push.url == "/cart"
    assert await sim.send_due_pushes() == []
    sim.advance(minutes=30)
    [sent] = await sim.send_due_pushes()
    assert sent.title == push.title and sent.rule == "abandoned_cart" and sent.visitor == sim.visitor


async def test_adding_more_moves_the_one_pending_push_later() -> None:
    sim = Simulator(rules=["abandoned_cart"], site=PUSH_SITE)
    await sim.subscribe_push()
    await sim.track("cart_add", id="mug", price=12)
    sim.advance(minutes=20)
    await sim.track("cart_add", id="tee", price=20)
    [push] = await sim.scheduled_pushes()
    assert push.due_in_s == 30 * 60 and "2 items" in push.body


async def test_a_purchase_or_an_emptied_cart_cancels_it() -> None:
    sim = Simulator(rules=["abandoned_cart"], site=PUSH_SITE)
    await sim.subscribe_push()
    await sim.track("cart_add", id="mug", price=12)
    await sim.track("purchase", order_id="o1", value=12)
    assert await sim.scheduled_pushes() == []
    sim.new_visitor()
    await sim.subscribe_push()
    await sim.track("cart_add", id="mug", price=12)
    await sim.track("cart_remove", id="mug")
    assert await sim.scheduled_pushes() == []
    sim.advance(hours=1)
    assert await sim.send_due_pushes() == []


async def test_at_most_one_push_a_day_counting_pushes_sent() -> None:
    sim = Simulator(rules=["abandoned_cart"], site=PUSH_SITE)
    await sim.subscribe_push()
    await sim.track("cart_add", id="mug", price=12)
    sim.advance(minutes=31)
    assert len(await sim.send_due_pushes()) == 1
    await sim.track("cart_add", id="tee", price=20)
    assert await sim.scheduled_pushes() == []
    sim.advance(days=1, minutes=1)
    await sim.track("cart_add", id="lamp", price=30)
    assert len(await sim.scheduled_pushes()) == 1


async def test_visitors_who_cannot_get_a_push_get_nothing_scheduled() -> None:
    sim = Simulator(rules=["abandoned_cart"], site=PUSH_SITE)
    await sim.track("cart_add", id="mug", price=12)
    assert await sim.scheduled_pushes() == []
