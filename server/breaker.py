"""A circuit breaker in front of Redis: when it fails, requests stop waiting on it.

After a failure every request fails at once for `cooldown_s`; then one request is let through to probe
Redis while the others keep failing fast, and its success closes the breaker. With the client's short
socket timeouts (state.connect) no request waits on a Redis that is down or unreachable for long.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator

from server.state import UNAVAILABLE

log = logging.getLogger("storetag.breaker")

COOLDOWN_S = 1.0


class StoreUnavailable(Exception):
    """Redis failed moments ago: the request is answered without trying it."""


class Breaker:
    def __init__(self, cooldown_s: float = COOLDOWN_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown_s = cooldown_s
        self.clock = clock
        # 0 while closed; else when the next probe may go through.
        self._open_until = 0.0

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Runs the block unless the breaker is open; a store error in it opens the breaker."""
        if self._open_until:
            now = self.clock()
            if now < self._open_until:
                raise StoreUnavailable("redis failed moments ago; not trying it yet")
            self._open_until = now + self.cooldown_s  # this request probes; the others keep failing fast
        try:
            yield
        except UNAVAILABLE as exc:
            if not self._open_until:
                log.warning(
                    "redis unavailable (%s): answering degraded, probing every %.1f s", exc, self.cooldown_s
                )
            self._open_until = self.clock() + self.cooldown_s
            raise
        if self._open_until:
            log.warning("redis is back: breaker closed")
            self._open_until = 0.0
