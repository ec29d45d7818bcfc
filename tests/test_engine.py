"""The engine: rules are discovered, indexed by event, isolated when they fail, capped and prioritised."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from server.engine import BUILTIN_RULES_DIR, load_rules
from server.rules import Cap
from server.testing import Simulator
from tests.rulefiles import rule_source, write_rules
from tests.wire import batch, event, new_id, post


def greeter(name: str, priority: int = 0) -> str:
    return rule_source(priority=priority, action=f'Popup("hello.html", name="{name}")')


BROKEN = rule_source(priority=100, action='Popup("hello.html", name=str(1 / 0))')


async def test_a_raising_rule_is_logged_and_counted_and_the_answer_still_goes_out(
    make_client: Callable[..., httpx.AsyncClient], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules_dir = write_rules(tmp_path, broken=BROKEN, zz_greeter=greeter("Ada"))
    client = make_client(rules_dir=rules_dir)
    response = await post(client, batch(event("page_view"), visitor=new_id()))
    assert response.status_code == 200
    [action] = response.json()["actions"]
    assert action["id"] == "zz_greeter" and "Hello Ada" in action["html"]
    assert "rule broken failed" in caplog.text
    runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.engine.failures["broken"] == 1


async def test_a_template_that_fails_to_render_gives_the_slot_to_the_next_rule(tmp_path: Path) -> None:
    write_rules(
        tmp_path,
        a_missing=greeter("x", priority=5).replace("hello.html", "nope.html"),
        b_greeter=greeter("Bo"),
    )
    sim = Simulator(rule_dirs=[tmp_path])
    [action] = await sim.page_view()
    assert action.id == "b_greeter"
    assert sim.runtime.renderer.failures["a_missing"] == 1


async def test_the_highest_priority_rule_wins_the_one_modal(tmp_path: Path) -> None:
    write_rules(tmp_path, low=greeter("low", priority=1), high=greeter("high", priority=9))
    [action] = await Simulator(rule_dirs=[tmp_path]).page_view()
    assert action.id == "high"


def test_template_values_are_escaped(tmp_path: Path) -> None:
    write_rules(tmp_path, greeter=greeter("x"))
    html = (
        Simulator(rule_dirs=[tmp_path])
        .runtime.renderer.templates.get_template("hello.html")
        .render(name="<img src=x onerror=alert(1)>")
    )
    assert "<img" not in html and "&lt;img" in html


async def test_rules_are_only_called_for_the_events_they_listen_to(tmp_path: Path) -> None:
    write_rules(tmp_path, greeter=greeter("x"))
    sim = Simulator(rule_dirs=[tmp_path])
    assert await sim.track("cart_add", id="mug") == []
    assert await sim.page_view() != []


def test_duplicate_rule_ids_fail_at_start_up(tmp_path: Path) -> None:
    write_rules(tmp_path, welcome=greeter("x"))
    with pytest.raises(SystemExit, match="duplicate rule id 'welcome'"):
        load_rules([BUILTIN_RULES_DIR, tmp_path])


def test_unknown_event_names_fail_at_start_up(tmp_path: Path) -> None:
    write_rules(tmp_path, typo=rule_source(on="page_veiw"))
    with pytest.raises(ValueError, match="unknown event types \\['page_veiw'\\]"):
        load_rules([tmp_path])


@pytest.mark.parametrize(
    ("cap", "shows_ago_ms", "allowed"),
    [
        ("1/session", [5_000], False),
        ("1/session", [120_000], True),  # shown in an earlier session
        ("2/day", [1_000], True),
        ("2/day", [1_000, 2_000], False),
        ("2/day", [1_000, 90_000_000], True),
        ("1/7d", [6 * 86_400_000], False),
        ("1/7d", [8 * 86_400_000], True),
        ("1/ever", [400 * 86_400_000], False),
    ],
)
def test_caps_count_shows_in_their_window(cap: str, shows_ago_ms: list[int], allowed: bool) -> None:
    from server.visitor import ActionHistory

    now = 1_000_000_000_000
    history = ActionHistory(shown=sorted(now - ago for ago in shows_ago_ms))
    assert Cap.parse(cap).allows(history, session_started=now - 60_000, now_ms=now) is allowed


def test_a_malformed_cap_fails_at_import() -> None:
    with pytest.raises(ValueError, match="not like"):
        Cap.parse("once a day")


async def test_caps_hold_through_the_api_on_real_redis(client: httpx.AsyncClient) -> None:
    visitor = new_id()
    await post(client, batch(event("page_view"), visitor=visitor))
    [welcome] = (await post(client, batch(event("page_view"), visitor=visitor))).json()["actions"]
    assert welcome["id"] == "welcome" and welcome["trigger"] == "now"
    await post(client, batch(event("action_shown", action="welcome"), visitor=visitor))
    assert (await post(client, batch(event("page_view"), visitor=visitor))).json()["actions"] == []
