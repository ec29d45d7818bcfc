"""Open-loop load at a fixed arrival rate on POST /v1/events: the latency visitors would see at that rate.

wrk keeps its connections busy (a closed loop): when the server slows down wrk sends less, so its
percentiles hide the queueing a crowd would meet. Here batches (bench/batches.py, the shop of events.lua)
arrive at a fixed mean rate, as Poisson arrivals from many independent visitors, whatever the server does;
each latency runs from the moment the request was due, not from when a connection was free to send it
(no coordinated omission, as in wrk2). The generator's own lag (due → queued for a connection) is reported
apart, so a late generator is visible rather than hidden in the server's figures.

    .venv/bin/python bench/fixed_rate.py URL --rate 800 --duration 10 [--connections 64]

Prints one JSON object (rate asked and achieved, p50/p90/p99/max ms, statuses, answers with actions).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
from batches import Traffic
from local_servers import BenchError, pinned
from targets import ORIGIN, SITE

DRAIN_TIMEOUT_S = 30.0
_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


class FixedRateResult(msgspec.Struct):
    rate: float  # asked, requests per second
    achieved: float  # answered per second of the schedule
    sent: int
    answered: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    lag_p99_ms: float  # generator lag: due → put on the queue for a connection
    statuses: dict[int, int]
    with_actions: int
    errors: int  # connection errors and requests unanswered within the drain timeout

    @property
    def non_2xx(self) -> int:
        return sum(n for code, n in self.statuses.items() if not 200 <= code < 300) + self.errors


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * pct / 100))]


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = _CONTENT_LENGTH.search(head)
    body = await reader.readexactly(int(length[1])) if length else b""
    return int(head[9:12]), body


class Load:
    def __init__(self, url: str, args: argparse.Namespace) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.head = (
            f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: text/plain;charset=UTF-8\r\nOrigin: {args.origin}\r\nContent-Length: "
        ).encode()
        self.args = args
        self.traffic = Traffic(args.site, seed=args.seed)
        self.queue: asyncio.Queue[float | None] = asyncio.Queue()
        self.latencies: list[float] = []
        self.lags: list[float] = []
        self.statuses: dict[int, int] = {}
        self.with_actions = self.sent = 0

    async def connection(self) -> None:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            while (due := await self.queue.get()) is not None:
                body = self.traffic.next_body()
                try:
                    writer.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
                    status, answer = await read_response(reader)
                except (OSError, asyncio.IncompleteReadError):  # counted as unanswered
                    writer.close()
                    reader, writer = await asyncio.open_connection(self.host, self.port)
                    continue
                self.latencies.append(loop.time() - due)
                self.statuses[status] = self.statuses.get(status, 0) + 1
                self.with_actions += b'"kind"' in answer
        finally:
            writer.close()

    async def schedule(self) -> float:
        """Puts each request on the queue when it is due; returns the seconds the schedule covered."""
        loop, rng = asyncio.get_running_loop(), random.Random(self.args.seed)
        start = due = loop.time() + 0.05
        end = start + float(self.args.duration)
        while (due := due + rng.expovariate(self.args.rate)) < end:
            if (delay := due - loop.time()) > 0:
                await asyncio.sleep(delay)
            self.lags.append(loop.time() - due)  # how late the generator itself is
            self.queue.put_nowait(due)
            self.sent += 1
        return end - start

    async def run(self) -> FixedRateResult:
        connections = [asyncio.create_task(self.connection()) for _ in range(self.args.connections)]
        covered = await self.schedule()
        for _ in connections:
            self.queue.put_nowait(None)
        done, pending = await asyncio.wait(connections, timeout=DRAIN_TIMEOUT_S)
        for task in pending:
            task.cancel()
        for task in done:
            if task.exception() is not None:
                raise SystemExit(f"fixed_rate: a connection failed: {task.exception()!r}")
        ms = sorted(1000 * v for v in self.latencies)
        answered = len(ms)
        return FixedRateResult(
            rate=self.args.rate,
            achieved=answered / covered,
            sent=self.sent,
            answered=answered,
            p50_ms=percentile(ms, 50),
            p90_ms=percentile(ms, 90),
            p99_ms=percentile(ms, 99),
            max_ms=ms[-1] if ms else 0.0,
            lag_p99_ms=percentile(sorted(1000 * v for v in self.lags), 99),
            statuses=self.statuses,
            with_actions=self.with_actions,
            errors=self.sent - answered,  # connection errors and requests unanswered in time
        )


def run_fixed_rate(url: str, rate: float, seconds: int, connections: int, cpu: str) -> FixedRateResult:
    """Runs this module as a process pinned to `cpu` and reads its result."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        url,
        "--rate",
        f"{rate:.0f}",
        "--duration",
        str(seconds),
    ]
    cmd += ["--connections", str(connections), "--site", SITE, "--origin", ORIGIN]
    limit = seconds + 60
    try:
        done = subprocess.run(pinned(cmd, cpu), capture_output=True, text=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"fixed_rate.py did not finish within {limit} s") from exc
    if done.returncode != 0:
        raise BenchError(f"fixed_rate.py failed ({done.returncode}): {done.stderr[-500:]}")
    raw = json.loads(done.stdout)
    raw["statuses"] = {int(code): n for code, n in raw["statuses"].items()}
    return FixedRateResult(**raw)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True, help="mean requests per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of arrivals")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    parser.add_argument("--site", default=SITE)
    parser.add_argument("--origin", default=ORIGIN)
    parser.add_argument("--seed", type=int, default=6)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.rate <= 0:
        sys.exit("fixed_rate: --rate must be positive")
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        result = runner.run(Load(args.url, args).run())
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")


if __name__ == "__main__":
    main()
