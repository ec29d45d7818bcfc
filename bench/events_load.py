"""Load benchmark of POST /v1/events: Storetag with 4, 54 and 1,004 rules beside a floor app, same stack.

Saturation: one uvicorn worker pinned to CPU 0 answers realistic event batches (bench/events.lua: 1-4 events
from ~5,000 visitors, unique batch ids) posted by wrk pinned to CPU 1, with state in a real redis-server of
its own: requests per second, p50 and p99. The floor (bench/floor_app.py) is Starlette + msgspec + one Redis
pipeline and nothing of ours, so storetag/floor is the share of the stack's ceiling that Storetag keeps.
Storetag runs with the demo rules (rules/), then with 50 and 1,000 generated rules on top
(bench/rule_sets.py), which gives the cost of rules. Then latency at 80 % of each target's saturation:
open-loop arrivals at that fixed rate (bench/fixed_rate.py), p50/p99 from when each request was due.

A run that gets any non-2xx answer is INVALID: it would be measuring errors. A run during which processes
outside the benchmark took more than NOISE_LIMIT % of a CPU is disturbed and run again while the time budget
lasts, then marked DISTURBED.

    .venv/bin/python bench/events_load.py [--quick] [--only storetag] [--rounds 3] [--duration 10]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import events_tables
from fixed_rate import FixedRateResult, run_fixed_rate
from load_runs import NOISE_LIMIT, Run, summarise, with_cpu
from local_servers import BenchError, RedisServer, redis_command, redis_server, sigterm_unwinds
from report import Goal, Section
from rule_sets import write_rule_set
from targets import HERE, ORIGIN, SITE, Target, floor_app, storetag_server
from wrk_load import WrkResult, run_wrk, wrk_command

LUA_SCRIPT = HERE / "events.lua"
SERVER_CPU = "0"
LOAD_CPU = "1"  # wrk, the fixed-rate generator and redis-server: the server under test has CPU 0 to itself
WARMUP_SECONDS = 2
NOISY_RETRIES = 2
FIXED_RATE_SHARE = 0.8  # of the saturation req/s
FIXED_RATE_CONNECTIONS = 64
GENERATED_RULES = {"storetag": 0, "storetag+50": 50, "storetag+1000": 1000}


@dataclass
class Bench:
    """What one benchmark run shares: its directory, its Redis, its options, its time budget."""

    tmp: Path
    redis: RedisServer
    args: argparse.Namespace
    deadline: float
    rule_dirs: dict[str, Path] = field(default_factory=dict)

    def target(self, name: str) -> AbstractContextManager[Target]:
        if name == "floor":
            return floor_app(self.tmp, self.redis, SERVER_CPU)
        count = GENERATED_RULES[name]
        if count and name not in self.rule_dirs:
            self.rule_dirs[name] = write_rule_set(self.tmp / f"rules-{count}", count)
        return storetag_server(self.tmp, self.redis, SERVER_CPU, self.rule_dirs.get(name))


# --- measuring ------------------------------------------------------------------------------------------


def saturate(url: str, seconds: int, args: argparse.Namespace) -> WrkResult:
    cmd = wrk_command(url, seconds, args.connections, str(LUA_SCRIPT), [SITE, ORIGIN])
    return run_wrk(cmd, LOAD_CPU, seconds)


def measure(bench: Bench, name: str, rate: float = 0.0) -> Run:
    """One run of a fresh server on a flushed Redis: saturation by wrk, or a fixed rate when rate > 0."""
    args = bench.args
    print(f"== {name}" + (f" at {rate:.0f} req/s" if rate else ""), flush=True)
    redis_command(bench.redis.port, "FLUSHALL")
    try:
        with bench.target(name) as server:
            url = f"{server.base}/v1/events"
            saturate(url, WARMUP_SECONDS, args)

            def load() -> WrkResult | FixedRateResult:
                if rate:
                    return run_fixed_rate(url, rate, args.duration, FIXED_RATE_CONNECTIONS, LOAD_CPU)
                return saturate(url, args.duration, args)

            result, cpu = with_cpu(server, bench.redis, load)
    except BenchError as exc:
        print(f"   not measured: {exc}", flush=True)
        return Run(name, note=f"not measured: {str(exc).splitlines()[0]}")
    run = Run(name, result, cpu, server.rules)
    # The keys the target left in Redis: a server that writes no state is not doing the work.
    run.redis_keys = int(redis_command(bench.redis.port, "DBSIZE").lstrip(b":"))
    if isinstance(result, WrkResult) and result.non_2xx:
        run.note = f"INVALID: {result.non_2xx} non-2xx answers, first: {result.sample}"
    elif isinstance(result, WrkResult) and result.socket_errors:
        run.note = f"INVALID: socket errors: {result.socket_errors}"
    elif isinstance(result, FixedRateResult) and result.non_2xx:
        run.note = f"INVALID: statuses {result.statuses}, {result.errors} errors"
    print(f"   {events_tables.summary(run)} {run.note}", flush=True)
    return run


def measure_quietly(bench: Bench, name: str, rate: float = 0.0) -> Run:
    for attempt in range(NOISY_RETRIES + 1):
        run = measure(bench, name, rate)
        if run.result is None or not run.disturbed:
            return run
        if attempt < NOISY_RETRIES and time.monotonic() < bench.deadline:
            print(f"   disturbed (others' CPU {run.cpu.others:.0f} %): again", flush=True)
        else:
            break
    run.note = f"DISTURBED: others' CPU {run.cpu.others:.0f} % {run.note}".strip()
    return run


# --- the part -------------------------------------------------------------------------------------------


def goals(saturated: dict[str, Run], at_rate: dict[str, Run]) -> list[Goal]:
    return [
        events_tables.floor_goal(saturated),
        events_tables.latency_goal(at_rate),
        events_tables.rules_goal(saturated),
    ]


def run(args: argparse.Namespace) -> Section:
    if not shutil.which("wrk"):
        raise BenchError("wrk not found: run `make bench`, which installs it")
    names = [name for name in ("floor", *GENERATED_RULES) if args.only in (None, name)]
    with (
        tempfile.TemporaryDirectory(prefix="storetag-bench-") as tmp_dir,
        redis_server(Path(tmp_dir), LOAD_CPU) as redis,
    ):
        bench = Bench(Path(tmp_dir), redis, args, time.monotonic() + args.budget)
        # Rounds alternate the targets, so a noisy neighbour on the machine hits all alike.
        runs = [measure_quietly(bench, name) for _ in range(args.rounds) for name in names]
        saturated = {name: summarise([r for r in runs if r.target == name]) for name in names}
        at_rate = {
            name: measure_quietly(bench, name, FIXED_RATE_SHARE * row.rps)
            for name, row in saturated.items()
            if row.valid and row.rps
        }
    return Section(
        title="POST /v1/events under load",
        command=command_line(args),
        tables=[
            events_tables.saturation_table(saturated),
            events_tables.rate_table(at_rate, FIXED_RATE_SHARE),
        ],
        goals=goals(saturated, at_rate),
        notes=events_tables.notes(args, NOISE_LIMIT, NOISY_RETRIES, WARMUP_SECONDS),
        failed=not all(r.valid for r in [*saturated.values(), *at_rate.values()]),
    )


def command_line(args: argparse.Namespace) -> str:
    flags = ["--quick"] if args.quick else []
    flags += [f"--rounds {args.rounds}", f"--duration {args.duration}", f"--connections {args.connections}"]
    return " ".join([".venv/bin/python bench/events_load.py", *flags])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("events load")
    group.add_argument("--only", choices=["floor", *GENERATED_RULES], help="measure one target only")
    group.add_argument(
        "--rounds", type=int, help="saturation runs per target, alternated (default 3; quick 1)"
    )
    group.add_argument("--duration", type=int, help="seconds per measured run (default 10; quick 5)")
    group.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    group.add_argument("--budget", type=float, help="seconds after which disturbed runs are not redone")


def apply_defaults(args: argparse.Namespace) -> None:
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.duration = args.duration or (5 if args.quick else 10)
    args.budget = args.budget or (45.0 if args.quick else 150.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, one round")
    add_arguments(parser)
    args = parser.parse_args()
    apply_defaults(args)
    with sigterm_unwinds():
        section = run(args)
    print("\n" + section.markdown())
    return 1 if section.failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted: every server it started is stopped")
    except BenchError as exc:
        sys.exit(str(exc))
