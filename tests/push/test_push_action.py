"""The Push rule action: no trigger slot, no site pop-up limit, only on a site with web push, checked
arguments."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from server.rules import Push
from server.testing import PUSH_SITE, TEST_SITE, Simulator
from tests.rulefiles import rule_source, write_rules

PUSH_SOURCE = (
    "from server.rules import Push, Visit, rule\n\n\n"
    "@rule(on='page_view')\n"
    "def nudge(visit: Visit) -> Push:\n"
    "    return Push('Come back', url='/', after='10m', unless=('signup',))\n"
)


async def test_a_push_takes_no_pop_up_slot_and_site_limits_do_not_hold_it(tmp_path: Path) -> None:
    rules = write_rules(tmp_path, hello=rule_source(), nudge=PUSH_SOURCE)
    site = msgspec.structs.replace(PUSH_SITE, popups_per_session=1)
    sim = Simulator(rule_dirs=[rules], site=site)
    await sim.subscribe_push()
    [popup] = await sim.page_view()
    assert popup.id == "hello"  # the push did not take the `now` slot from the pop-up
    assert await sim.page_view() == []  # one pop-up a session
    [push] = await sim.scheduled_pushes()
    assert (push.rule, push.due_in_s, push.unless) == ("nudge", 600, ["signup"])
    await sim.track("signup", source="footer")
    assert await sim.scheduled_pushes() == []


async def test_a_site_without_web_push_schedules_no_push(tmp_path: Path) -> None:
    sim = Simulator(rule_dirs=[write_rules(tmp_path, nudge=PUSH_SOURCE)], site=TEST_SITE)
    assert not sim.site.vapid_public_key
    await sim.subscribe_push()  # a device, so that only the missing keys keep the push back
    assert await sim.page_view() == []
    assert await sim.scheduled_pushes() == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"unless": ("page_view",)}, "cancelled by"),
        ({"urgency": "urgent"}, "urgency"),
        ({"after": "soon"}, "duration"),
        ({"topic": "no spaces allowed"}, "topic"),
    ],
)
def test_a_push_with_bad_arguments_fails_when_the_rule_builds_it(
    arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Push("Title", **arguments)  # type: ignore[arg-type]
