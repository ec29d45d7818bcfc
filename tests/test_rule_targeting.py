"""Who a rule is for, declared in @rule(page=…, device=…, cart=…, path=…): the engine calls it only for
those visitors, and finds them from an index rather than by asking every rule."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from server import protocol as p
from server.engine import Engine, Rule, load_rules
from server.rules import RuleSpec
from server.targeting import Facts, Targets
from server.testing import Simulator
from server.visitor import CartLine, Utm, VisitorState
from tests.rulefiles import rule_source, write_rules

PIXEL = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/140 Mobile Safari/537.36"


def simulator(
    tmp_path: Path, user_agent: str = "", accept_language: str = "en-US", **rules: str
) -> Simulator:
    options = {"user_agent": user_agent} if user_agent else {}
    return Simulator(rule_dirs=[write_rules(tmp_path, **rules)], accept_language=accept_language, **options)


def shown(actions: list[p.Action]) -> list[str]:
    return sorted(action.id for action in actions)


async def test_a_rule_for_one_page_type_runs_only_there(tmp_path: Path) -> None:
    sim = simulator(tmp_path, cart_help=rule_source(page="cart", cap="9/session"))
    assert await sim.page_view(page_type="product") == []
    assert shown(await sim.page_view(page_type="cart")) == ["cart_help"]


async def test_an_armed_action_for_one_page_type_is_withdrawn_on_another(tmp_path: Path) -> None:
    sim = simulator(tmp_path, cart_exit=rule_source(page="cart", trigger="exit_intent"))
    assert shown(await sim.page_view(page_type="cart")) == ["cart_exit"]
    assert await sim.page_view(page_type="product") == []
    assert sim.withdrawn == ["cart_exit"]


async def test_device_language_and_country(tmp_path: Path) -> None:
    rules = {
        "mobile_de": rule_source(device="mobile", language="de"),
        "austria": rule_source(country="AT"),
        "swiss_german": rule_source(language="de-CH"),
    }
    desktop = simulator(tmp_path, accept_language="de-AT", **rules)
    assert await desktop.page_view() == []
    phone = simulator(tmp_path, user_agent=PIXEL, accept_language="de-AT,de;q=0.9", **rules)
    assert shown(await phone.page_view()) == ["mobile_de"]
    french_phone = simulator(tmp_path, user_agent=PIXEL, accept_language="fr-FR", **rules)
    assert await french_phone.page_view() == []
    zurich = simulator(tmp_path, accept_language="de-CH", **rules)
    assert shown(await zurich.page_view()) == ["swiss_german"]
    in_austria = Simulator(rule_dirs=[tmp_path], country="AT")
    assert shown(await in_austria.page_view()) == ["austria"]


async def test_a_campaign_for_a_utm_source_follows_the_session_from_its_landing_page(tmp_path: Path) -> None:
    sim = simulator(tmp_path, newsletter=rule_source(utm_source="newsletter", cap="9/session"))
    assert shown(await sim.page_view(url="https://shop.test/?utm_source=Newsletter")) == ["newsletter"]
    assert shown(await sim.page_view(url="https://shop.test/p/mug")) == ["newsletter"]
    sim.new_visitor()
    assert await sim.page_view(url="https://shop.test/?utm_source=google") == []


async def test_new_and_returning_visitors(tmp_path: Path) -> None:
    sim = simulator(
        tmp_path,
        hello=rule_source(visitor="new", cap="9/ever"),
        welcome_back=rule_source(visitor="returning", cap="9/ever"),
    )
    assert shown(await sim.page_view()) == ["hello"]
    sim.advance(hours=2)
    assert shown(await sim.page_view()) == ["welcome_back"]


async def test_a_rule_for_products_in_the_cart_is_withdrawn_when_they_leave_it(tmp_path: Path) -> None:
    sim = simulator(
        tmp_path,
        mug_offer=rule_source(on=["cart_add", "cart_remove"], cart=["mug", "cup"], trigger="exit_intent"),
        kitchen=rule_source(on=["cart_add", "cart_remove"], cart_category="kitchen", trigger="scroll:50"),
    )
    assert await sim.track("cart_add", id="tee", price=20, category="clothes") == []
    assert shown(await sim.track("cart_add", id="mug", price=12, category="kitchen")) == [
        "kitchen",
        "mug_offer",
    ]
    assert await sim.track("cart_remove", id="mug") == []
    assert sorted(sim.withdrawn) == ["kitchen", "mug_offer"]


async def test_products_and_categories_viewed_this_session(tmp_path: Path) -> None:
    sim = simulator(
        tmp_path,
        mug_fan=rule_source(on="product_view", viewed="mug", condition='visit.viewed_products["mug"] >= 2'),
        kitchen_fan=rule_source(on="category_view", viewed_category="kitchen"),
    )
    assert await sim.track("product_view", id="mug") == []
    assert shown(await sim.track("product_view", id="mug")) == ["mug_fan"]
    assert await sim.track("category_view", id="garden") == []
    assert shown(await sim.track("category_view", id="kitchen")) == ["kitchen_fan"]


async def test_path_patterns_exact_and_with_wildcards(tmp_path: Path) -> None:
    sim = simulator(
        tmp_path,
        sale=rule_source(path="/sale/*", cap="9/session"),
        about=rule_source(path=["/about", "/contact"], cap="9/session"),
    )
    assert shown(await sim.page_view(url="https://shop.test/sale/winter?x=1")) == ["sale"]
    assert shown(await sim.page_view(url="https://shop.test/about")) == ["about"]
    assert await sim.page_view(url="https://shop.test/about/team") == []


async def test_attributes_combine_with_and_their_values_with_or(tmp_path: Path) -> None:
    sim = simulator(tmp_path, both=rule_source(on="cart_add", cart=["mug", "cup"], visitor="returning"))
    assert await sim.track("cart_add", id="cup", price=5) == []
    sim.advance(hours=2)
    await sim.page_view()
    assert shown(await sim.track("cart_add", id="plate", price=5)) == ["both"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"device": "phone"}, "device is one of bot, desktop, mobile, tablet"),
        ({"visitor": "old"}, "visitor is one of new, returning"),
        ({"cart": []}, "cart takes product ids"),
        ({"viewed": 42}, "viewed takes product ids"),
        ({"path": "sale/*"}, "start with / or"),
        ({"weather": "rain"}, "unexpected keyword argument 'weather'"),
    ],
)
def test_bad_targeting_fails_at_start_up(tmp_path: Path, arguments: dict[str, object], message: str) -> None:
    write_rules(tmp_path, bad=rule_source(**arguments))
    with pytest.raises((ValueError, TypeError), match=message):
        load_rules([tmp_path])


def _random_targets(r: random.Random) -> Targets:
    choices = {
        "cart": ["p1", "p2", "p3", "p4"],
        "viewed": ["p1", "p2", "p3", "p4"],
        "path": ["/p/1", "/c/*", "/p/2", "/"],
        "cart_category": ["kitchen", "garden"],
        "utm_source": ["newsletter", "google"],
        "device": ["mobile", "desktop"],
        "visitor": ["new", "returning"],
    }
    picked = r.sample(sorted(choices), r.randint(0, 3))
    return Targets.parse({name: r.sample(choices[name], r.randint(1, 2)) for name in picked})


def _random_state(r: random.Random) -> VisitorState:
    state = VisitorState()
    state.profile.visits = r.randint(1, 3)
    session = state.session
    session.url = "https://shop.test" + r.choice(["/p/1", "/p/2", "/c/kitchen", "/", "/about"])
    session.page_type = r.choice(["product", "category", "home"])
    session.device = r.choice(["mobile", "desktop", "tablet"])
    session.utm = Utm(source=r.choice(["", "newsletter", "Google"]))
    session.products = {f"p{n}": 1 for n in r.sample(range(1, 6), r.randint(0, 3))}
    session.cart = {
        f"p{n}": CartLine(1, category=r.choice(["kitchen", "garden"]))
        for n in r.sample(range(1, 6), r.randint(0, 2))
    }
    return state


def test_the_index_calls_exactly_the_rules_whose_targeting_holds_in_priority_order() -> None:
    r = random.Random(5)
    rules = [
        Rule(
            f"rule{i}",
            lambda visit: None,
            RuleSpec(
                on=frozenset(r.sample(["page_view", "cart_add", "product_view"], r.randint(1, 2))),
                caps=(),
                trigger="now",
                priority=r.randint(0, 3),
                expires_s=60,
                pages=frozenset(r.sample(["product", "category", "home"], r.randint(0, 2))),
                targets=_random_targets(r),
            ),
        )
        for i in range(300)
    ]
    engine = Engine(rules)
    for _ in range(300):
        state, types = _random_state(r), frozenset(r.sample(["page_view", "cart_add", "product_view"], 2))
        facts = Facts(state)
        expected = [
            rule.id
            for rule in engine.ranked
            if rule.spec.on & types
            and (not rule.spec.pages or state.session.page_type in rule.spec.pages)
            and rule.spec.targets.match(facts)
        ]
        called = [call.rule.id for call in engine.plan(types, state.session.page_type).calls(state)]
        assert called == expected
        assert 0 < len(called) < len(rules)
