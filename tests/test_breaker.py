"""The circuit breaker in front of Redis: fail fast after a failure, one probe after the cooldown."""

from __future__ import annotations

import pytest
import redis.exceptions

from server.breaker import Breaker, StoreUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fail(breaker: Breaker) -> None:
    with pytest.raises(redis.exceptions.ConnectionError), breaker.guard():
        raise redis.exceptions.ConnectionError("Connection refused")


def succeed(breaker: Breaker) -> bool:
    with breaker.guard():
        return True


def test_requests_pass_while_redis_works() -> None:
    breaker = Breaker(cooldown_s=1.0, clock=Clock())
    assert succeed(breaker) and succeed(breaker)


def test_after_a_failure_requests_fail_at_once_until_the_cooldown_ends() -> None:
    clock = Clock()
    breaker = Breaker(cooldown_s=1.0, clock=clock)
    fail(breaker)
    clock.now += 0.9
    with pytest.raises(StoreUnavailable):
        succeed(breaker)


def test_after_the_cooldown_one_probe_goes_through_and_its_success_closes_the_breaker() -> None:
    clock = Clock()
    breaker = Breaker(cooldown_s=1.0, clock=clock)
    fail(breaker)
    clock.now += 1.0
    assert succeed(breaker)
    assert succeed(breaker)


def test_while_a_probe_is_out_the_other_requests_keep_failing_fast() -> None:
    clock = Clock()
    breaker = Breaker(cooldown_s=1.0, clock=clock)
    fail(breaker)
    clock.now += 1.0
    with breaker.guard(), pytest.raises(StoreUnavailable):  # the probe is still waiting on Redis
        succeed(breaker)


def test_a_failed_probe_opens_the_breaker_for_another_cooldown() -> None:
    clock = Clock()
    breaker = Breaker(cooldown_s=1.0, clock=clock)
    fail(breaker)
    clock.now += 1.0
    fail(breaker)
    clock.now += 0.5
    with pytest.raises(StoreUnavailable):
        succeed(breaker)


def test_errors_that_are_not_the_stores_leave_the_breaker_closed() -> None:
    breaker = Breaker(cooldown_s=1.0, clock=Clock())
    with pytest.raises(ValueError), breaker.guard():
        raise ValueError("a bad batch")
    assert succeed(breaker)
