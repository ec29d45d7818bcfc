"""One measured load run: its result, the CPU the server used and the CPU the rest of the machine took.

The machine is shared: a run during which processes outside the benchmark took more than NOISE_LIMIT % of a
CPU is disturbed. Of several runs of one target the median quiet one stands for it.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from fixed_rate import FixedRateResult
from local_servers import CpuSnapshot, RedisServer
from targets import Target
from wrk_load import WrkResult

NOISE_LIMIT = 25.0  # % of one CPU taken by processes outside the benchmark
T = TypeVar("T")


@dataclass
class Cpu:
    server: float = 0.0  # % of one CPU used by the server under test during the measured run
    others: float = 0.0  # % of one CPU used by processes outside the benchmark: noise
    wall: float = 0.0  # seconds

    @property
    def disturbed(self) -> bool:
        return self.others > NOISE_LIMIT


@dataclass
class Run:
    """One measured run of one target: a wrk saturation run or a fixed-rate run."""

    target: str
    result: WrkResult | FixedRateResult | None = None
    cpu: Cpu = field(default_factory=Cpu)
    rules: int = 0
    redis_keys: int = 0
    note: str = ""

    @property
    def rps(self) -> float:
        if isinstance(self.result, WrkResult):
            return self.result.rps
        return self.result.achieved if self.result else 0.0

    @property
    def requests(self) -> int:
        if isinstance(self.result, WrkResult):
            return self.result.requests
        return self.result.answered if self.result else 0

    @property
    def cpu_us_per_request(self) -> float:
        """Server CPU time per answered request: what one request costs the server."""
        return self.cpu.server / 100 * self.cpu.wall * 1e6 / self.requests if self.requests else 0.0

    @property
    def disturbed(self) -> bool:
        return self.cpu.disturbed

    @property
    def valid(self) -> bool:
        if isinstance(self.result, WrkResult):
            return self.result.non_2xx == 0 and not self.result.socket_errors
        return self.result is not None and self.result.non_2xx == 0


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def with_cpu(target: Target, redis: RedisServer, load: Callable[[], T]) -> tuple[T, Cpu]:
    """Runs the load; returns its result, the CPU the server used and the CPU the rest of the machine took."""
    pids = [target.pid, redis.pid]
    before, load_before = CpuSnapshot.take(pids), children_cpu_seconds()
    result = load()
    after, load_cpu = CpuSnapshot.take(pids), children_cpu_seconds() - load_before
    wall = after.wall - before.wall
    used = {pid: after.processes[pid] - before.processes[pid] for pid in pids}
    others = after.machine - before.machine - sum(used.values()) - load_cpu
    return result, Cpu(100 * used[target.pid] / wall, max(0.0, 100 * others / wall), wall)


def summarise(runs: list[Run]) -> Run:
    """One run per target: its first failed run if any, else its median run by req/s among the quiet ones
    (of an even number, the lower of the middle two: the fixed-rate run asks 80 % of this one's rate)."""
    for run in runs:
        if not run.valid:
            return run
    quiet = [run for run in runs if not run.disturbed] or runs
    ranked = sorted(quiet, key=lambda run: run.rps)
    median = ranked[(len(ranked) - 1) // 2]
    if len(ranked) > 1:
        low, high = ranked[0].rps, ranked[-1].rps
        median.note = f"median of {len(ranked)} runs ({low:.0f}-{high:.0f} req/s) {median.note}".strip()
    return median
