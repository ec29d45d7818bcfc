"""How bench/events_load.py reports: its tables, its goal lines and how it measured."""

from __future__ import annotations

import argparse
import shlex

from fixed_rate import FixedRateResult
from load_runs import Run
from report import Goal, markdown_table
from targets import ORIGIN, SITE
from wrk_load import WrkResult, wrk_command

FLOOR_RATIO_GOAL = 0.85
P99_GOAL_MS = 10.0
RULES_SLOWDOWN_GOAL = 0.10
SATURATED_CPU = 90.0  # % of its core: a server this busy is at its capacity, not at 80 % of it
BASE, MOST = "storetag", "storetag+1000"


def summary(run: Run) -> str:
    r, cpu = run.result, f"server CPU {run.cpu.server:.0f} %, others {run.cpu.others:.0f} %"
    if isinstance(r, WrkResult):
        return (
            f"{r.rps:.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, {cpu}, statuses {r.statuses}"
        )
    if isinstance(r, FixedRateResult):
        return (
            f"{r.achieved:.0f} of {r.rate:.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, "
            f"generator lag p99 {r.lag_p99_ms:.2f} ms, {cpu}, statuses {r.statuses}"
        )
    return "not measured"


def _cpu_cells(run: Run) -> list[str]:
    return [f"{run.cpu.server:.0f}", f"{run.cpu_us_per_request:.0f}", f"{run.cpu.others:.0f}"]


def saturation_table(saturated: dict[str, Run]) -> str:
    floor = saturated.get("floor")
    rows = []
    for name, run in saturated.items():
        r = run.result
        if not isinstance(r, WrkResult):
            rows.append([name, *["—"] * 11, run.note])
            continue
        ratio = f"{r.rps / floor.rps:.2f}" if floor and floor.valid and floor.rps else "—"
        rules = str(run.rules) if name != "floor" else "—"
        measured = [f"{r.rps:.0f}", ratio, f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", str(r.requests)]
        rows.append(
            [name, rules, *measured, str(r.with_actions), *_cpu_cells(run), str(run.redis_keys), run.note]
        )
    header = ["target", "rules", "req/s", "x floor", "p50 ms", "p99 ms", "requests", "with actions"]
    header += ["server CPU %", "CPU µs/req", "others' CPU %", "Redis keys", "note"]
    title = "Saturation (wrk, closed loop):\n\n"
    return title + markdown_table(header, rows, "l" + "r" * 11 + "l")


def rate_table(at_rate: dict[str, Run], share: float) -> str:
    rows = []
    for name, run in at_rate.items():
        r = run.result
        if not isinstance(r, FixedRateResult):
            rows.append([name, *["—"] * 10, run.note])
            continue
        latency = [
            f"{r.p50_ms:.2f}",
            f"{r.p90_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.max_ms:.1f}",
            f"{r.lag_p99_ms:.2f}",
        ]
        cpu = [f"{run.cpu.server:.0f}", f"{run.cpu.others:.0f}"]
        note = run.note
        if run.cpu.server >= SATURATED_CPU:
            # The rate came from a saturation run that a neighbour made look better or worse than this one.
            note = (
                f"SATURATED: the server used {run.cpu.server:.0f} % of its core, so the asked rate was at or "
            )
            note += f"above what it could answer during this run {run.note}".rstrip()
        rows.append([name, f"{r.rate:.0f}", f"{r.achieved:.0f}", *latency, str(r.answered), *cpu, note])
    header = ["target", "asked req/s", "answered req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"]
    header += ["generator lag p99 ms", "requests", "server CPU %", "others' CPU %", "note"]
    title = f"At {share:.0%} of each target's saturation (open loop, Poisson arrivals):\n\n"
    return title + markdown_table(header, rows, "l" + "r" * 10 + "l")


def _usable(*runs: Run | None) -> bool:
    return all(run is not None and run.valid and run.rps for run in runs)


def _caveat(*runs: Run | None) -> str:
    return "a run was DISTURBED" if any(run is not None and run.disturbed for run in runs) else ""


def floor_goal(saturated: dict[str, Run]) -> Goal:
    goal = f"req/s ≥ {FLOOR_RATIO_GOAL}x the floor (demo rules)"
    floor, ours = saturated.get("floor"), saturated.get(BASE)
    if floor is None or ours is None or not _usable(floor, ours):
        return Goal(goal, "—", None)
    ratio = ours.rps / floor.rps
    others = [
        f"{name.removeprefix('storetag')} rules {run.rps / floor.rps:.2f}x"
        for name, run in saturated.items()
        if name not in ("floor", BASE) and _usable(run)
    ]
    measured = f"{ratio:.2f}x ({ours.rps:.0f} vs {floor.rps:.0f} req/s)"
    if ours.cpu_us_per_request:
        # Capacity of one core by CPU per request: much less moved by neighbours than req/s.
        by_cpu = floor.cpu_us_per_request / ours.cpu_us_per_request
        measured += f", {by_cpu:.2f}x by server CPU per request"
    measured += f"; {', '.join(others)}" if others else ""
    return Goal(goal, measured, ratio >= FLOOR_RATIO_GOAL, _caveat(floor, ours))


def latency_goal(at_rate: dict[str, Run]) -> Goal:
    goal = f"p99 ≤ {P99_GOAL_MS:.0f} ms at 80 % of saturation (demo rules)"
    ours = at_rate.get(BASE)
    if ours is None or not _usable(ours) or not isinstance(ours.result, FixedRateResult):
        return Goal(goal, "—", None)
    p99 = ours.result.p99_ms
    others = [
        f"{name.removeprefix('storetag')} rules {run.result.p99_ms:.1f} ms"
        for name, run in at_rate.items()
        if name not in ("floor", BASE) and _usable(run) and isinstance(run.result, FixedRateResult)
    ]
    measured = f"{p99:.1f} ms at {ours.result.rate:.0f} req/s" + (f"; {', '.join(others)}" if others else "")
    caveat = _caveat(ours)
    if ours.cpu.server >= SATURATED_CPU:
        caveat = ", ".join(filter(None, [caveat, "the server was SATURATED at that rate in that run"]))
    return Goal(goal, measured, p99 <= P99_GOAL_MS, caveat)


def rules_goal(saturated: dict[str, Run]) -> Goal:
    goal = f"≤ {RULES_SLOWDOWN_GOAL:.0%} slower from ~10 to 1,000 rules"
    few, many = saturated.get(BASE), saturated.get(MOST)
    if few is None or many is None or not _usable(few, many):
        return Goal(goal, "—", None)
    slowdown = 1 - many.rps / few.rps
    cost = many.cpu_us_per_request / few.cpu_us_per_request if few.cpu_us_per_request else 0.0
    measured = (
        f"{slowdown:.0%} fewer req/s with {many.rules} rules than with {few.rules} "
        f"({many.rps:.0f} vs {few.rps:.0f}); CPU per request {cost:.2f}x"
    )
    return Goal(goal, measured, slowdown <= RULES_SLOWDOWN_GOAL, _caveat(few, many))


def notes(args: argparse.Namespace, noise_limit: float, retries: int, warmup: int) -> list[str]:
    wrk = shlex.join(wrk_command("URL", args.duration, args.connections, "bench/events.lua", [SITE, ORIGIN]))
    return [
        f"Saturation: `{wrk}` pinned to CPU 1 after a {warmup} s warm-up run; {args.rounds} round(s) "
        "alternating the targets, each target's median quiet run (by req/s) reported. Bodies from "
        "`bench/events.lua`: 1-4 events per batch (page, product and category views, cart adds) from "
        f"~5,000 visitors, unique batch ids, `text/plain`, `Origin: {ORIGIN}`.",
        "80 % of saturation: `bench/fixed_rate.py` (pinned to CPU 1) sends the same kind of batches over "
        "64 keep-alive connections at a fixed mean rate, 80 % of that target's saturation req/s above, "
        f"with Poisson arrivals for {args.duration} s after a {warmup} s wrk warm-up; each latency counts "
        "from when the request was due, so queueing is not hidden (no coordinated omission). generator "
        "lag: how late the generator itself put requests out (already inside the latencies).",
        "Servers: one uvicorn worker each, access log off, pinned to CPU 0; redis-server (no persistence) "
        "on CPU 1, flushed before each run. floor = `bench/floor_app.py` (Starlette + msgspec + one Redis "
        "pipeline, empty answer). storetag = `storetag serve` with the demo rules (`rules/`); +50 and "
        "+1000 add that many rules generated by `bench/rule_sets.py` (STORETAG_RULES) in a temp directory.",
        "The rules goal compares the demo's rules (the `rules` column: the nearest configuration to 10) "
        "with those and 1,000 generated ones.",
        "with actions: answers that carried at least one action. server CPU %: the server process's CPU "
        "time over the run (100 = its core saturated); CPU µs/req: that time per answered request. "
        "others' CPU %: what processes outside the benchmark took from the machine meanwhile; a run above "
        f"{noise_limit:.0f} is disturbed by a neighbour and run again (up to {retries} times while the "
        f"{args.budget:.0f} s budget lasts), then marked DISTURBED. Redis keys: what the target left in "
        "Redis.",
        "A run with any non-2xx answer or socket error is marked INVALID and has no ratio.",
    ]
