"""CPU time and Redis round trips per POST /v1/events, in-process: a repeatable measure on a shared machine.

wrk's requests/s move with whatever else the machine runs; the CPU the server spends per batch and the
round trips it makes to Redis do not. This drives the real ASGI app (Starlette, decoding, state, rules,
recommendations, stats, encoding; no uvicorn and no sockets to the client) with the same batches as
bench/events.lua, 32 requests at a time, against a redis-server of its own, and reports per batch: the
process's CPU µs (time.process_time), the round trips to Redis (pipelines and single commands sent) and
the commands Redis ran (INFO commandstats), with the demo rules and with 50 and 1,000 generated rules.

    .venv/bin/python bench/event_cpu.py [--batches 4000] [--rules 0,50,1000] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import batches as traffic
import redis
import targets
from local_servers import redis_command, redis_server
from redis.asyncio.connection import AbstractConnection
from rule_sets import write_rule_set

from server.app import create_app
from server.settings import Settings

CONCURRENCY = 32
# Round trips: each write of packed commands to a connection (a pipeline is one).
sent = [0]
_send = AbstractConnection.send_packed_command


async def _counting_send(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
    sent[0] += 1
    await _send(self, command, check_health)


AbstractConnection.send_packed_command = _counting_send  # type: ignore[method-assign]

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def post(app: Any, body: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/events",
        "raw_path": b"/v1/events",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"text/plain;charset=UTF-8"),
            (b"content-length", str(len(body)).encode()),
            (b"origin", targets.ORIGIN.encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    status = [0]
    delivered = [False]

    async def receive() -> dict[str, Any]:
        if delivered[0]:
            await asyncio.sleep(3600)
        delivered[0] = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]

    await app(scope, receive, send)
    return status[0]


def commands(port: int) -> dict[str, int]:
    stats = redis.Redis(port=port).info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


async def measure(app: Any, port: int, count: int) -> dict[str, Any]:
    gen = traffic.Traffic(targets.SITE, seed=6)
    bodies = [gen.next_body() for _ in range(count)]
    warm = [gen.next_body() for _ in range(count // 4)]
    queue = iter(warm)

    async def worker() -> None:
        for body in queue:
            status = await post(app, body)
            if status != 200:
                raise SystemExit(f"status {status}")

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    redis_command(port, "CONFIG", "RESETSTAT")
    sent[0], queue = 0, iter(bodies)
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    ran = commands(port)
    return {
        "cpu_us": cpu * 1e6 / count,
        "round_trips": sent[0] / count,
        "commands": sum(ran.values()) / count,
        "wall_us": wall * 1e6 / count,
        "per_command": {name: calls / count for name, calls in sorted(ran.items())},
    }


def sites_file(tmp: Path) -> Path:
    path = tmp / "sites.toml"
    path.write_text(targets.SITES_TOML)
    return path


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as name, redis_server(Path(name), "1") as redis:
        tmp = Path(name)
        print(f"{'rules':>6} {'CPU µs/batch':>13} {'round trips':>12} {'commands':>9} {'wall µs':>8}")
        for extra in args.rules:
            rules_dir = write_rule_set(tmp / f"rules{extra}", extra) if extra else None
            settings = Settings(
                redis_url=redis.url,
                sites_file=sites_file(tmp),
                rules_dir=rules_dir,
                access_log=False,
                redis_timeout_ms=1000,
                rate_limit_ip=10**9,
                rate_limit_visitor=10**9,
                recs=not args.recs_off,
            )
            redis_command(redis.port, "FLUSHALL")
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                if args.profile:
                    import cProfile

                    profiler = cProfile.Profile()
                    profiler.enable()
                figures = await measure(app, redis.port, args.batches)
                if args.profile:
                    profiler.disable()
                    profiler.dump_stats(f"{args.profile}.{extra}")
            print(
                f"{len(app.state.runtime.engine.rules):>6} {figures['cpu_us']:>13.0f} "
                f"{figures['round_trips']:>12.2f} "
                f"{figures['commands']:>9.2f} {figures['wall_us']:>8.0f}",
                flush=True,
            )
            if args.commands:
                print("       " + ", ".join(f"{k} {v:.2f}" for k, v in figures["per_command"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=4000)
    parser.add_argument("--rules", type=lambda text: [int(n) for n in text.split(",")], default=[0, 50, 1000])
    parser.add_argument("--recs-off", action="store_true")
    parser.add_argument("--commands", action="store_true", help="print the commands per batch by name")
    parser.add_argument("--profile", help="write cProfile stats to FILE.RULES")
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
