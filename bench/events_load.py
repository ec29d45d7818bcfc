"""Load benchmark of POST /v1/events: Storetag's server against a floor app on the same stack.

Measures requests per second and p50/p99 latency of one uvicorn worker pinned to CPU 0 answering realistic
event batches (bench/events.lua: 1-4 events from ~5,000 visitors, unique batch ids) posted by wrk pinned to
CPU 1, with state in a real redis-server of its own. The floor (bench/floor_app.py) is Starlette + msgspec +
one Redis pipeline and nothing of ours, so storetag/floor is the share of the stack's ceiling that Storetag
keeps. A run that gets any non-2xx answer is reported as invalid: it would be measuring errors.

    .venv/bin/python bench/events_load.py [--only floor|storetag] [--rounds 3] [--duration 10]

Prints a table and writes it to bench/RESULTS.md. Everything it starts listens on 127.0.0.1 only and is
stopped on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from local_servers import (
    HOST,
    BenchError,
    CpuSnapshot,
    RedisServer,
    free_port,
    log_tail,
    pinned,
    redis_command,
    redis_server,
    running,
    stop,
    wait_until,
)
from wrk_load import WrkResult, run_wrk, wrk_command

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
LUA_SCRIPT = HERE / "events.lua"
RESULTS_FILE = HERE / "RESULTS.md"

SITE = "bench"
ORIGIN = "http://shop.bench"
SERVER_CPU = "0"
LOAD_CPU = "1"  # wrk and redis-server: the server under test has CPU 0 to itself
WARMUP_SECONDS = 2
# A run during which processes outside the benchmark took more CPU than this (% of one CPU) is disturbed by a
# neighbour on the machine, and is run again up to NOISY_RETRIES times.
NOISE_LIMIT = 25.0
NOISY_RETRIES = 2

# A secret, as every real site has: rules that sign coupon codes need it.
SITES_TOML = f"""[sites.{SITE}]
name = "Bench"
origins = ["{ORIGIN}"]
secret = "{os.urandom(16).hex()}"
"""


def smoke_batch() -> bytes:
    """One page view, as the tag sends it."""
    event = f'{{"type":"page_view","ts":{int(time.time() * 1000)},"url":"{ORIGIN}/","ref":"",'
    event += '"props":{"page_type":"home","title":"Home"}}'
    ids = f'"visitor":"{"a" * 32}","session":"{"b" * 32}","batch":"{os.urandom(16).hex()}"'
    return f'{{"site":"{SITE}",{ids},"events":[{event}]}}'.encode()


@dataclass(frozen=True)
class Target:
    base: str
    pid: int


@dataclass
class Row:
    target: str
    result: WrkResult | None = None
    note: str = ""
    redis_keys: int = 0
    server_cpu: float = 0.0  # % of one CPU used by the server under test during the measured run
    others_cpu: float = 0.0  # % of one CPU used by processes outside the benchmark: noise
    duration: float = 0.0  # seconds of the measured run

    @property
    def cpu_us_per_request(self) -> float:
        """Server CPU time per answered request: what one request costs the server."""
        if not self.result or not self.result.requests:
            return 0.0
        return self.server_cpu / 100 * self.duration * 1e6 / self.result.requests

    @property
    def disturbed(self) -> bool:
        return self.others_cpu > NOISE_LIMIT

    @property
    def valid(self) -> bool:
        return self.result is not None and self.result.non_2xx == 0 and not self.result.socket_errors


# --- http -----------------------------------------------------------------------------------------------


def http(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "text/plain;charset=UTF-8", "Origin": ORIGIN} if body is not None else {}
    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def answers(url: str, body: bytes | None = None) -> bool:
    try:
        return http(url, body)[0] == 200
    except OSError:
        return False


def smoke_test(base: str) -> None:
    """One real batch must be accepted before any load: a benchmark of 4xx answers is worthless."""
    status, body = http(f"{base}/v1/events", smoke_batch())
    if status != 200 or b'"actions"' not in body:
        raise BenchError(f"POST /v1/events answered {status}: {body[:300].decode(errors='replace')}")


# --- targets --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def floor_app(tmp: Path, redis: RedisServer) -> Iterator[Target]:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "floor_app:app", "--host", HOST]
    cmd += ["--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "warning"]
    env = {**os.environ, "REDIS_URL": redis.url}
    base, log = f"http://{HOST}:{port}", tmp / "floor.log"
    with running(pinned(cmd, SERVER_CPU), log, env, cwd=ROOT) as proc:
        wait_until(lambda: answers(f"{base}/v1/events", smoke_batch()), proc, "floor app", log)
        yield Target(base, proc.pid)


def storetag_command(port: int) -> list[str]:
    storetag = BIN / "storetag"
    if not storetag.exists():
        raise BenchError(f"{storetag} not found: run `make .venv`")
    cmd = [str(storetag), "serve", "--host", HOST, "--port", str(port)]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        usage = subprocess.run([*cmd[:2], "--help"], capture_output=True, text=True, timeout=30).stdout
        if "--no-access-log" in usage:
            cmd.append("--no-access-log")
    return cmd


@contextlib.contextmanager
def storetag_server(
    tmp: Path, redis: RedisServer, settings: dict[str, str] | None = None
) -> Iterator[Target]:
    """`storetag serve` on the bench site; `settings` are extra STORETAG_* variables."""
    port = free_port()
    sites = tmp / "sites.toml"
    sites.write_text(SITES_TOML)
    env = {**os.environ, "REDIS_URL": redis.url, "STORETAG_SITES": str(sites), "STORETAG_ACCESS_LOG": "0"}
    env.update(settings or {})
    base, log = f"http://{HOST}:{port}", tmp / "storetag.log"
    with running(pinned(storetag_command(port), SERVER_CPU), log, env, cwd=ROOT) as proc:
        wait_until(lambda: answers(f"{base}/healthz"), proc, "storetag serve", log)
        try:
            smoke_test(base)
        except BenchError as exc:
            stop(proc)  # so that its log is complete
            raise BenchError(f"{exc}\n{log_tail(log)}") from exc
        yield Target(base, proc.pid)
        warn_if_chatty(log)


def warn_if_chatty(log: Path) -> None:
    """A server that logs per request measures its logging: say so, with its most frequent line."""
    lines = log.read_text(errors="replace").splitlines()
    if len(lines) > 100:
        # Drop the timestamp so that repeats of one message count together.
        common = Counter(re.sub(r"^[\d-]+ [\d:,]+ ", "", line) for line in lines).most_common(1)[0]
        print(f"   note: the server wrote {len(lines)} log lines under load; {common[1]} x {common[0]!r}")


TARGETS = {"floor": floor_app, "storetag": storetag_server}


# --- measuring ------------------------------------------------------------------------------------------


def load(url: str, seconds: int, args: argparse.Namespace) -> WrkResult:
    cmd = wrk_command(url, seconds, args.connections, str(LUA_SCRIPT), [SITE, ORIGIN])
    return run_wrk(cmd, LOAD_CPU, seconds)


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured_run(target: Target, redis: RedisServer, args: argparse.Namespace) -> tuple[WrkResult, Row]:
    """The measured wrk run, with the CPU the server used and the CPU the rest of the machine took."""
    pids = [target.pid, redis.pid]
    before, wrk_before = CpuSnapshot.take(pids), children_cpu_seconds()
    result = load(f"{target.base}/v1/events", args.duration, args)
    after, wrk_cpu = CpuSnapshot.take(pids), children_cpu_seconds() - wrk_before
    wall = after.wall - before.wall
    used = {pid: after.processes[pid] - before.processes[pid] for pid in pids}
    others = after.machine - before.machine - sum(used.values()) - wrk_cpu
    server_cpu, others_cpu = 100 * used[target.pid] / wall, max(0.0, 100 * others / wall)
    row = Row("", result, server_cpu=server_cpu, others_cpu=others_cpu, duration=wall)
    return result, row


def measure_quietly(target: str, tmp: Path, redis: RedisServer, args: argparse.Namespace) -> Row:
    for attempt in range(NOISY_RETRIES + 1):
        row = measure(target, tmp, redis, args)
        if row.result is None or not row.disturbed:
            return row
        if attempt < NOISY_RETRIES:
            print(f"   disturbed (others' CPU {row.others_cpu:.0f} %): again", flush=True)
    row.note = f"DISTURBED: others' CPU {row.others_cpu:.0f} % {row.note}".strip()
    return row


def summarise(runs: list[Row]) -> Row:
    """One row per target: its first failed run if any, else its median run by req/s among the quiet ones."""
    for run in runs:
        if not run.valid:
            return run
    quiet = [run for run in runs if not run.disturbed] or runs
    ranked = sorted(quiet, key=lambda run: run.result.rps if run.result else 0.0)
    median = ranked[len(ranked) // 2]
    if len(ranked) > 1 and ranked[0].result and ranked[-1].result:
        low, high = ranked[0].result.rps, ranked[-1].result.rps
        median.note = f"median of {len(ranked)} runs ({low:.0f}-{high:.0f} req/s) {median.note}".strip()
    return median


def measure(target: str, tmp: Path, redis: RedisServer, args: argparse.Namespace) -> Row:
    print(f"== {target}", flush=True)
    redis_command(redis.port, "FLUSHALL")
    try:
        with TARGETS[target](tmp, redis) as server:
            load(f"{server.base}/v1/events", WARMUP_SECONDS, args)
            result, row = measured_run(server, redis, args)
    except BenchError as exc:
        print(f"   not measured: {exc}", flush=True)
        return Row(target, note=f"not measured: {str(exc).splitlines()[0]}")
    row.target = target
    # The keys the target left in Redis: a server that writes no state is not doing the work.
    row.redis_keys = int(redis_command(redis.port, "DBSIZE").lstrip(b":"))
    if result.non_2xx:
        row.note = f"INVALID: {result.non_2xx} non-2xx answers, first: {result.sample}"
    elif result.socket_errors:
        row.note = f"INVALID: socket errors: {result.socket_errors}"
    print(
        f"   {result.rps:.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
        f"server CPU {row.server_cpu:.0f} %, others {row.others_cpu:.0f} %, statuses {result.statuses} "
        f"{row.note}",
        flush=True,
    )
    return row


# --- report ---------------------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def redis_version() -> str:
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"v=(\S+)", out)
    return match[1] if match else "unknown"


def figures(row: Row) -> list[str]:
    r = row.result
    if r is None:
        return ["—"] * 9
    measured = [f"{r.rps:.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", str(r.requests), str(r.with_actions)]
    cpu = [f"{row.server_cpu:.0f}", f"{row.cpu_us_per_request:.0f}", f"{row.others_cpu:.0f}"]
    return [*measured, *cpu, str(row.redis_keys)]


def table(rows: list[Row]) -> str:
    lines = [
        "| target | req/s | p50 ms | p99 ms | requests | with actions | server CPU % | CPU µs/req "
        "| others' CPU % | Redis keys | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [f"| {row.target} | {' | '.join(figures(row))} | {row.note} |" for row in rows]
    return "\n".join(lines)


def ratio_line(rows: list[Row]) -> str:
    by_target = {row.target: row for row in rows}
    floor, ours = by_target.get("floor"), by_target.get("storetag")
    if floor and ours and floor.valid and ours.valid and floor.result and ours.result:
        caveat = " (a run was DISTURBED: do not trust it)" if floor.disturbed or ours.disturbed else ""
        rps = ours.result.rps / floor.result.rps
        cost = ours.cpu_us_per_request / floor.cpu_us_per_request if floor.cpu_us_per_request else 0.0
        return f"storetag/floor req/s: **{rps:.2f}**; CPU per request: {cost:.2f} times{caveat}"
    return "storetag/floor req/s: — (needs a valid run of both)"


def report(rows: list[Row], args: argparse.Namespace) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    wrk = shlex.join(wrk_command("URL", args.duration, args.connections, "bench/events.lua", [SITE, ORIGIN]))
    command = shlex.join([".venv/bin/python", "bench/events_load.py", *sys.argv[1:]])
    return f"""# POST /v1/events load benchmark

{table(rows)}

{ratio_line(rows)}

- Date: {now}
- Machine: {cpu_model()}, {os.cpu_count()} CPUs; Python {platform.python_version()}; Redis {redis_version()}
- Command: `{command}` (what `make bench` runs)
- Load: `{wrk}` pinned to CPU 1, after a {WARMUP_SECONDS} s warm-up run;
  {args.rounds} rounds alternating the targets, each target's median quiet run (by req/s) reported.
  Bodies from `bench/events.lua`: 1-4 events per batch (page, product and category views, cart adds)
  from ~5,000 visitors, unique batch ids, `text/plain`, `Origin: {ORIGIN}`.
- Servers: one uvicorn worker each, access log off, pinned to CPU 0; redis-server (no persistence) on
  CPU 1, flushed before each run. floor = `bench/floor_app.py` (Starlette + msgspec + one Redis pipeline).
- with actions: answers that carried at least one action (Storetag runs the rules in `rules/`).
- server CPU %: the server process's CPU time over the run (100 = its core saturated); CPU µs/req: that
  time per answered request. others' CPU %: what processes outside the benchmark took from the machine
  meanwhile; a run above {NOISE_LIMIT:.0f} is disturbed by a neighbour and run again, up to {NOISY_RETRIES}
  times, then marked DISTURBED. Redis keys: what the target left in Redis (it really wrote state).
- A run with any non-2xx answer or socket error is marked INVALID and has no ratio.
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(TARGETS), help="measure one target only")
    parser.add_argument("--duration", type=int, default=10, help="seconds of measured load per target")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--rounds", type=int, default=3, help="runs per target, alternated; median reported")
    parser.add_argument("--no-write", action="store_true", help=f"do not overwrite {RESULTS_FILE.name}")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if not shutil.which("wrk"):
        print("wrk not found: run `make bench`, which installs it", file=sys.stderr)
        return 2
    # SIGTERM unwinds like Ctrl-C, so every server we started is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with tempfile.TemporaryDirectory(prefix="storetag-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        targets = [t for t in TARGETS if args.only in (None, t)]
        with redis_server(tmp, LOAD_CPU) as redis:
            # Rounds alternate the targets, so a noisy neighbour on the machine hits both alike.
            runs = [measure_quietly(t, tmp, redis, args) for _ in range(args.rounds) for t in targets]
    rows = [summarise([run for run in runs if run.target == t]) for t in targets]
    text = report(rows, args)
    print("\n" + table(rows) + "\n\n" + ratio_line(rows))
    if not args.no_write:
        RESULTS_FILE.write_text(text)
        print(f"\nwritten to {RESULTS_FILE.relative_to(ROOT)}")
    return 0 if all(row.valid for row in rows) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted: every server it started is stopped")
