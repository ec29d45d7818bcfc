"""Scores that fade with a half-life without ever being rewritten.

An increment made at time t is stored multiplied by 2^((t - t0) / half_life), so newer signal weighs more
and every stored score is already "decayed" relative to the others: ranking needs no rewrite. To keep the
factor finite, time is cut into eras of ERA_HALF_LIVES half-lives, each with its own keys and its own t0.
During the last OVERLAP_HALF_LIVES of an era every write also goes to the next era's keys, so a new era
starts with the recent signal already in place; what it lacks is decayed to under 1/256 anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ERA_HALF_LIVES = 128
OVERLAP_HALF_LIVES = 8
# A key not written for this many half-lives holds nothing that still counts: it expires.
IDLE_HALF_LIVES = 8


@dataclass(frozen=True)
class Write:
    era: int
    factor: float
    ttl_s: int


@dataclass(frozen=True)
class Decay:
    half_life_s: float

    @property
    def era_s(self) -> float:
        return self.half_life_s * ERA_HALF_LIVES

    def era(self, now_s: float) -> int:
        return int(now_s // self.era_s)

    def factor(self, now_s: float, era: int) -> float:
        return math.pow(2.0, (now_s - era * self.era_s) / self.half_life_s)

    def writes(self, now_s: float) -> list[Write]:
        """Where an increment made now goes: this era, and the next one near the end of this one."""
        era = self.era(now_s)
        eras = [era]
        if (era + 1) * self.era_s - now_s <= OVERLAP_HALF_LIVES * self.half_life_s:
            eras.append(era + 1)
        idle_s = IDLE_HALF_LIVES * self.half_life_s
        return [
            # A key outlives its era by one half-life, for readers that started just before the turn.
            Write(
                e,
                self.factor(now_s, e),
                math.ceil(min(idle_s, (e + 1) * self.era_s + self.half_life_s - now_s)),
            )
            for e in eras
        ]

    def value(self, stored: float, now_s: float) -> float:
        """A score of the current era as a plain decayed count at now_s."""
        return stored / self.factor(now_s, self.era(now_s))
