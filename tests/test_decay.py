"""Decayed scores: growth factors instead of rewrites, eras that keep the factor finite."""

from __future__ import annotations

import pytest

from server.decay import ERA_HALF_LIVES, IDLE_HALF_LIVES, OVERLAP_HALF_LIVES, Decay

DAY = 86400.0
decay = Decay(DAY)


def test_an_increment_made_one_half_life_later_weighs_twice_as_much() -> None:
    start = decay.era(1e9) * decay.era_s + 10 * DAY
    [now] = decay.writes(start)
    [later] = decay.writes(start + DAY)
    assert later.era == now.era
    assert later.factor == pytest.approx(2 * now.factor)


def test_a_stored_score_reads_back_as_a_count_that_halves_each_half_life() -> None:
    start = decay.era(1e9) * decay.era_s + 10 * DAY
    [write] = decay.writes(start)
    stored = 8 * write.factor
    assert decay.value(stored, start) == pytest.approx(8)
    assert decay.value(stored, start + 3 * DAY) == pytest.approx(1)


def test_near_the_end_of_an_era_writes_also_warm_the_next_one() -> None:
    era_end = (decay.era(1e9) + 1) * decay.era_s
    early = decay.writes(era_end - (OVERLAP_HALF_LIVES + 1) * DAY)
    late = decay.writes(era_end - DAY)
    assert len(early) == 1
    assert [write.era for write in late] == [early[0].era, early[0].era + 1]
    assert late[0].factor == pytest.approx(2 ** (ERA_HALF_LIVES - 1))
    assert late[1].factor == pytest.approx(0.5)


def test_factors_stay_finite_and_keys_expire_once_idle_or_past_their_era() -> None:
    for offset in range(0, int(decay.era_s), int(DAY)):
        for write in decay.writes(1e9 + offset):
            assert 0 < write.factor <= 2**ERA_HALF_LIVES
            assert 0 < write.ttl_s <= IDLE_HALF_LIVES * DAY
