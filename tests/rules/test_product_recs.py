from server import protocol as p
from server.testing import Simulator

MUG = {"name": "Blue Mug", "price": 12, "category": "kitchen"}


async def browse(sim: Simulator, *products: str) -> None:
    sim.new_visitor()
    for product in products:
        await sim.product_page(product, name=product.title(), price=10, category="kitchen")


async def test_the_product_page_slot_shows_what_was_viewed_with_this_product() -> None:
    sim = Simulator(rules=["product_recs"])
    for _ in range(3):
        await browse(sim, "mug", "teapot")
    await browse(sim, "mug", "beans")
    sim.new_visitor()
    [recs] = await sim.product_page("mug", slots=["product_recs"], **MUG)
    assert isinstance(recs, p.RecsAction)
    assert (recs.slot, recs.strategy) == ("product_recs", "viewed_together")
    assert [item.id for item in recs.items] == ["teapot", "beans"]
    assert "Customers also viewed" in recs.html and "Teapot" in recs.html


async def test_a_page_without_the_slot_gets_no_list() -> None:
    sim = Simulator(rules=["product_recs"])
    await browse(sim, "mug", "teapot")
    sim.new_visitor()
    assert await sim.product_page("mug", **MUG) == []


async def test_a_product_nobody_viewed_with_others_falls_back_to_popular_items() -> None:
    sim = Simulator(rules=["product_recs"])
    await browse(sim, "teapot")
    sim.new_visitor()
    [recs] = await sim.product_page("new-mug", slots=["product_recs"], **MUG)
    assert [item.id for item in recs.items] == ["teapot"]
