"""Caps, cooldowns, site-wide limits and priorities, all decided on the server from the visitor's state."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from server import protocol as p
from server.engine import load_rules
from server.testing import TEST_SITE, Simulator
from tests.rulefiles import rule_source, write_rules


def simulator(tmp_path: Path, site_options: dict[str, int] | None = None, **rules: str) -> Simulator:
    site = msgspec.structs.replace(TEST_SITE, **(site_options or {}))
    return Simulator(rule_dirs=[write_rules(tmp_path, **rules)], site=site)


async def test_a_closed_pop_up_rests_for_its_cooldown(tmp_path: Path) -> None:
    sim = simulator(tmp_path, promo=rule_source(cooldown_after_close="2h"))
    assert len(await sim.page_view()) == 1
    await sim.track("action_closed", action="promo")
    sim.advance(minutes=119)
    assert await sim.page_view() == []
    sim.advance(minutes=2)
    assert await sim.page_view() != []


async def test_a_converted_visitor_never_sees_it_again(tmp_path: Path) -> None:
    sim = simulator(tmp_path, signup=rule_source(until_converted=True))
    assert await sim.page_view() != []
    await sim.track("action_clicked", action="signup")
    sim.advance(days=30)
    assert await sim.page_view() == []


async def test_several_caps_all_hold(tmp_path: Path) -> None:
    sim = simulator(tmp_path, promo=rule_source(cap=["1/session", "2/7d"]))
    assert await sim.page_view() != []
    assert await sim.page_view() == []
    sim.advance(hours=1)
    assert await sim.page_view() != []
    sim.advance(hours=1)
    assert await sim.page_view() == []  # a new session, but two shows this week
    sim.advance(days=7)
    assert await sim.page_view() != []


async def test_the_site_allows_k_pop_ups_a_session_and_transactional_ones_are_exempt(tmp_path: Path) -> None:
    sim = simulator(
        tmp_path,
        {"popups_per_session": 2},
        a_promo=rule_source(priority=3, cap="1/session"),
        b_promo=rule_source(priority=2, cap="1/session"),
        c_promo=rule_source(priority=1, cap="1/session"),
        exit_offer=rule_source(priority=0, trigger="exit_intent"),
        receipt=rule_source(on="purchase", transactional=True),
    )
    assert sorted(action.id for action in await sim.page_view()) == ["a_promo", "exit_offer"]
    # Showing the second pop-up reaches the limit: the exit offer the page holds armed is dropped too.
    assert sorted(action.id for action in await sim.page_view()) == ["b_promo", "exit_offer"]
    assert sim.withdrawn == ["*"]
    assert await sim.page_view() == []
    assert [action.id for action in await sim.track("purchase", order_id="o", value=1)] == ["receipt"]


async def test_no_pop_up_within_the_sites_quiet_period_after_another(tmp_path: Path) -> None:
    sim = simulator(tmp_path, {"quiet_period_s": 60}, promo=rule_source(), other=rule_source())
    assert len(await sim.page_view()) == 1
    sim.advance(seconds=59)
    assert await sim.page_view() == []
    sim.advance(seconds=2)
    assert len(await sim.page_view()) == 1


async def test_per_trigger_slot_the_highest_priority_wins_and_the_loss_is_recorded(tmp_path: Path) -> None:
    sim = simulator(
        tmp_path,
        low_exit=rule_source(trigger="exit_intent", priority=1),
        high_exit=rule_source(trigger="exit_intent", priority=5, condition="visit.pages > 1"),
        now_popup=rule_source(),
    )
    assert sorted(action.id for action in await sim.page_view()) == ["low_exit", "now_popup"]
    actions = await sim.page_view()
    assert sorted((action.id, action.trigger) for action in actions) == [
        ("high_exit", "exit_intent"),
        ("now_popup", "now"),
    ]
    assert sim.withdrawn == ["low_exit"]  # armed from the first answer, now it lost its slot
    totals = await sim.runtime.stats.totals("shop", days=1, now_ms=int(sim.now * 1000))
    assert totals["low_exit"]["lost"] == 1 and totals["high_exit"]["offered"] == 1


async def test_only_actions_the_tag_can_hold_armed_are_withdrawn_when_their_condition_no_longer_holds(
    tmp_path: Path,
) -> None:
    sim = simulator(
        tmp_path,
        exit_offer=rule_source(trigger="exit_intent", condition="visit.pages < 2"),
        greeting=rule_source(condition="visit.pages < 2"),
    )
    assert sorted(action.id for action in await sim.page_view()) == ["exit_offer", "greeting"]
    assert await sim.page_view() == []
    # The armed exit-intent offer is dropped; the greeting showed at once, so nothing of it is armed.
    assert sim.withdrawn == ["exit_offer"]


async def test_a_page_that_says_what_it_holds_armed_is_told_to_drop_only_those(tmp_path: Path) -> None:
    condition = "visit.pages < 2"
    sim = simulator(
        tmp_path,
        exit_offer=rule_source(trigger="exit_intent", condition=condition),
        half_way=rule_source(trigger="scroll:50", condition=condition),
    )
    assert len(await sim.page_view()) == 2
    assert await sim.send(p.PageView(), armed=["exit_offer"]) == []
    assert sim.withdrawn == ["exit_offer"]
    assert await sim.send(p.PageView(), armed=[]) == []
    assert sim.withdrawn == []


async def test_a_batch_that_cannot_say_what_its_page_holds_armed_drops_only_what_the_session_was_given(
    tmp_path: Path,
) -> None:
    """The other 29 exit rules never gave this visitor anything: the answer does not list them."""
    rules = {
        f"exit_{n}": rule_source(trigger="exit_intent", condition=f"visit.pages < {2 * (n == 0)}")
        for n in range(30)
    }
    sim = simulator(tmp_path, **rules)
    assert [action.id for action in await sim.page_view()] == ["exit_0"]
    assert await sim.page_view() == []
    assert sim.withdrawn == ["exit_0"]
    assert await sim.page_view() == [] and sim.withdrawn == []


async def test_an_action_shown_is_no_longer_armed_and_is_not_withdrawn(tmp_path: Path) -> None:
    sim = simulator(tmp_path, exit_offer=rule_source(trigger="exit_intent", cap="1/session"))
    [offer] = await sim.page_view()
    await sim.fire(offer)
    assert await sim.page_view() == [] and sim.withdrawn == []


async def test_a_rule_can_be_limited_to_a_segment(tmp_path: Path) -> None:
    segments = (
        "from server.rules import Visit, segment\n\n\n@segment\ndef big(visit: Visit) -> bool:\n"
        "    return visit.cart.value > 100\n"
    )
    sim = simulator(tmp_path, segments=segments, vip=rule_source(on="cart_add", segment="big"))
    assert await sim.track("cart_add", id="a", price=50) == []
    assert await sim.track("cart_add", id="b", price=60) != []


def test_an_undefined_segment_or_a_bad_trigger_fails_at_start_up(tmp_path: Path) -> None:
    write_rules(tmp_path, vip=rule_source(segment="nobody"))
    with pytest.raises(SystemExit, match="segments that are not defined: \\['nobody'\\]"):
        load_rules([tmp_path])
    write_rules(tmp_path, vip=rule_source(trigger="hover:3"))
    with pytest.raises(ValueError, match="trigger 'hover:3' is not one of"):
        load_rules([tmp_path])
