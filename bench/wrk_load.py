"""Running wrk with a Lua script and reading its report: req/s, latency percentiles, status codes."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field

from local_servers import BenchError, pinned

TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
# wrk counts an answer slower than its timeout (2 s by default) as a socket error: at saturation with many
# rules a slow answer is latency, not an error.
TIMEOUT = "10s"


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    # Counted by the Lua script's response() hook ("STATUS code count" lines), with the first non-2xx body.
    statuses: dict[int, int] = field(default_factory=dict)
    sample: str = ""
    socket_errors: str = ""
    with_actions: int = 0  # answers that carried at least one action: the rules did fire

    @property
    def non_2xx(self) -> int:
        return sum(n for code, n in self.statuses.items() if not 200 <= code < 300)


def wrk_command(url: str, seconds: int, connections: int, script: str, script_args: list[str]) -> list[str]:
    timing = ["-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", TIMEOUT, "--latency"]
    return ["wrk", *timing, "-s", script, url, "--", *script_args]


def parse_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise BenchError(f"unreadable wrk latency {text!r}")
    return float(match[1]) * TIME_UNITS_MS[match[2]]


def parse_wrk(out: str) -> WrkResult:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    total = re.search(r"^\s+(\d+) requests in", out, re.M)
    if not (rps and p50 and p99 and total):
        raise BenchError(f"unreadable wrk output:\n{out}")
    sample = re.search(r"^SAMPLE (.*)$", out, re.M)
    errors = re.search(r"^\s+Socket errors: (.*)$", out, re.M)
    actions = re.search(r"^ACTIONS (\d+)$", out, re.M)
    return WrkResult(
        rps=float(rps[1]),
        p50_ms=parse_ms(p50[1]),
        p99_ms=parse_ms(p99[1]),
        requests=int(total[1]),
        statuses={int(code): int(n) for code, n in re.findall(r"^STATUS (\d+) (\d+)$", out, re.M)},
        sample=sample[1] if sample else "",
        socket_errors=errors[1] if errors else "",
        with_actions=int(actions[1]) if actions else 0,
    )


def run_wrk(cmd: list[str], cpu: str, seconds: int) -> WrkResult:
    limit = seconds + 60
    try:
        done = subprocess.run(pinned(cmd, cpu), capture_output=True, text=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {limit} s") from exc
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)
