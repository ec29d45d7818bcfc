from server import protocol as p
from server.testing import Simulator


async def view(sim: Simulator, *products: str) -> None:
    for product in products:
        await sim.product_page(product, name=product.title(), price=10, category="kitchen")


async def test_a_new_visitor_sees_what_is_popular() -> None:
    sim = Simulator(rules=["home_recs"])
    await view(sim, "mug", "mug", "teapot")
    sim.new_visitor()
    [recs] = await sim.page_view(slots=["home_recs"])
    assert isinstance(recs, p.RecsAction)
    assert recs.strategy == "popular" and "Popular right now" in recs.html
    assert [item.id for item in recs.items] == ["mug", "teapot"]


async def test_a_visitor_with_history_gets_picks_from_the_neighbours_of_what_they_viewed() -> None:
    sim = Simulator(rules=["home_recs"])
    for _ in range(3):
        sim.new_visitor()
        await view(sim, "pen", "notebook")
    sim.new_visitor()
    await view(sim, "mug", "teapot", "beans")
    sim.new_visitor()
    await view(sim, "pen")
    [recs] = await sim.page_view(slots=["home_recs"])
    assert isinstance(recs, p.RecsAction)
    assert recs.strategy == "for_you" and "Picked for you" in recs.html
    assert recs.items[0].id == "notebook"
