from server import protocol as p
from server.testing import Simulator


async def test_a_cart_worth_saving_arms_an_exit_intent_offer_with_a_signed_code() -> None:
    sim = Simulator(rules=["cart_rescue"])
    assert await sim.track("cart_add", id="tee", price=20) == []
    [offer] = await sim.track("cart_add", id="mug", price=12)
    assert isinstance(offer, p.OfferAction)
    assert offer.trigger == "exit_intent"
    assert offer.code.startswith("STAY10-") and offer.code in offer.html
    assert offer.offer_expires == int(sim.now * 1000) + 2 * 3600 * 1000
    assert f'data-storetag-countdown="{offer.offer_expires}"' in offer.html


async def test_the_visitor_keeps_the_same_code_until_it_is_shown_and_then_it_rests_a_day() -> None:
    sim = Simulator(rules=["cart_rescue"])
    [offer] = await sim.track("cart_add", id="lamp", price=40)
    [again] = await sim.page_view()
    assert again.code == offer.code
    await sim.fire(again)
    assert await sim.page_view() == []
    sim.advance(days=1, minutes=1)
    [next_day] = await sim.page_view()
    assert next_day.code != offer.code  # the first one expired after two hours


async def test_the_offer_is_withdrawn_when_the_cart_shrinks_below_the_threshold() -> None:
    sim = Simulator(rules=["cart_rescue"])
    assert await sim.track("cart_add", id="lamp", price=40) != []
    assert await sim.track("cart_remove", id="lamp") == []
    assert sim.withdrawn == ["cart_rescue"]


async def test_buyers_and_loyal_customers_get_no_rescue() -> None:
    sim = Simulator(rules=["cart_rescue"])
    for order in range(3):
        await sim.track("purchase", order_id=f"o{order}", value=20)
    sim.advance(days=1)
    assert await sim.track("cart_add", id="lamp", price=40) == []


async def test_a_redeemed_code_ends_the_offer_for_good() -> None:
    sim = Simulator(rules=["cart_rescue"])
    [offer] = await sim.track("cart_add", id="lamp", price=40)
    await sim.fire(offer)
    await sim.track("purchase", order_id="o1", value=40, code=offer.code)
    sim.advance(days=3)
    assert await sim.track("cart_add", id="lamp", price=40) == []
