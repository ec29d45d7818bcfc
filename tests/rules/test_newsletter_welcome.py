from server import protocol as p
from server.testing import Simulator

FROM_NEWSLETTER = "https://shop.test/?utm_source=newsletter&utm_campaign=december"


async def test_a_reader_from_the_newsletter_gets_a_code_on_the_landing_page() -> None:
    sim = Simulator(rules=["newsletter_welcome"])
    [offer] = await sim.page_view(url=FROM_NEWSLETTER, page_type="home")
    assert isinstance(offer, p.OfferAction) and offer.trigger == "now"
    assert offer.code.startswith("NEWS10-") and offer.code in offer.html
    assert "newsletter" in offer.html


async def test_visitors_from_elsewhere_get_nothing() -> None:
    sim = Simulator(rules=["newsletter_welcome"])
    assert await sim.page_view(url="https://shop.test/?utm_source=google", page_type="home") == []
    assert await sim.page_view(url="https://shop.test/c/mugs", page_type="category") == []


async def test_once_a_session_and_a_later_session_from_elsewhere_gets_none() -> None:
    sim = Simulator(rules=["newsletter_welcome"])
    assert await sim.page_view(url=FROM_NEWSLETTER, page_type="home") != []
    assert await sim.page_view(url="https://shop.test/p/mug", page_type="product") == []
    sim.advance(hours=2)
    assert await sim.page_view(url="https://shop.test/", page_type="home") == []


async def test_never_in_the_checkout_flow() -> None:
    sim = Simulator(rules=["newsletter_welcome"])
    checkout = "https://shop.test/checkout?utm_source=newsletter"
    assert await sim.page_view(url=checkout, page_type="checkout") == []
