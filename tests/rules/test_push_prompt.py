from server import protocol as p
from server.testing import PUSH_SITE, Simulator


def simulator() -> Simulator:
    return Simulator(rules=["push_prompt"], site=PUSH_SITE)


async def second_product_view(sim: Simulator) -> list[p.Action]:
    await sim.product_page("mug-blue")
    return await sim.product_page("mug-red")


async def test_the_prompt_comes_with_the_second_product_view_of_a_session_and_not_before() -> None:
    sim = simulator()
    assert await sim.page_view() == []
    assert await sim.product_page("mug-blue") == []
    [prompt] = await sim.product_page("mug-red")
    assert isinstance(prompt, p.PushPromptAction)
    assert "data-storetag-cta" in prompt.html and "data-storetag-close" in prompt.html


async def test_it_asks_once_a_session() -> None:
    sim = simulator()
    assert await second_product_view(sim) != []
    assert await sim.product_page("mug-green") == []
    sim.advance(minutes=31)
    assert await second_product_view(sim) != []


async def test_not_now_keeps_it_away_for_a_week() -> None:
    sim = simulator()
    [prompt] = await second_product_view(sim)
    await sim.track("action_closed", action=prompt.id)
    for days in (1, 5):
        sim.advance(days=days)
        assert await second_product_view(sim) == []
    sim.advance(days=2)
    assert await second_product_view(sim) != []


async def test_it_asks_at_most_twice_in_30_days() -> None:
    sim = simulator()
    for _ in range(2):
        assert await second_product_view(sim) != []
        sim.advance(days=1)
    assert await second_product_view(sim) == []
    sim.advance(days=29)
    assert await second_product_view(sim) != []


async def test_it_never_comes_to_a_subscriber_a_refuser_or_a_browser_without_push() -> None:
    for answer, props in (
        ("push_subscribed", {}),
        ("push_denied", {}),
        ("push_denied", {"reason": "unsupported"}),
    ):
        sim = simulator()
        await sim.track(answer, **props)
        assert await second_product_view(sim) == []
        sim.advance(days=60)
        assert await second_product_view(sim) == []


async def test_a_visitor_with_a_cart_is_not_interrupted() -> None:
    sim = simulator()
    await sim.product_page("mug-blue")
    await sim.track("cart_add", id="mug-blue", price=12)
    assert await sim.product_page("mug-red") == []


async def test_a_site_without_web_push_never_prompts() -> None:
    sim = Simulator(rules=["push_prompt"])
    assert not sim.site.vapid_public_key
    assert await second_product_view(sim) == []
