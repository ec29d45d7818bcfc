from server import protocol as p
from server.testing import Simulator


async def buy(sim: Simulator, *products: str) -> None:
    sim.new_visitor()
    items = [{"id": product, "price": 10, "category": "kitchen"} for product in products]
    for product in products:
        await sim.product_page(product, name=product.title(), price=10, category="kitchen")
    await sim.track("purchase", order_id=f"o-{sim.visitor}", value=10 * len(items), items=items)


async def test_the_cart_slot_shows_what_was_bought_with_the_cart() -> None:
    sim = Simulator(rules=["cart_recs"])
    await buy(sim, "mug", "beans")
    await buy(sim, "mug", "beans")
    await buy(sim, "teapot", "tea")
    sim.new_visitor()
    await sim.track("cart_add", id="mug", price=10)
    [recs] = await sim.page_view(page_type="cart", slots=["cart_recs"])
    assert isinstance(recs, p.RecsAction)
    assert recs.strategy == "bought_together"
    assert recs.items[0].id == "beans"
    assert "mug" not in [item.id for item in recs.items]


async def test_an_empty_cart_gets_no_list() -> None:
    sim = Simulator(rules=["cart_recs"])
    await buy(sim, "mug", "beans")
    sim.new_visitor()
    assert await sim.page_view(page_type="cart", slots=["cart_recs"]) == []
