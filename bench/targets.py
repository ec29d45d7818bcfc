"""The servers the benchmarks measure, started for real on 127.0.0.1: `storetag serve` and the floor app.

Each is a context manager that starts the server pinned to a CPU, waits until it answers a real batch (a
benchmark of 4xx answers is worthless) and stops it on exit, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
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
    RedisServer,
    free_port,
    log_tail,
    pinned,
    running,
    stop,
    wait_until,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent

SITE = "bench"
ORIGIN = "http://shop.bench"
# A secret, as every real site has (rules that sign coupon codes need it), and the demo shop's settings, so
# that the demo rules (free shipping nudge, cart rescue) meet the carts they are written for.
SITES_TOML = f"""[sites.{SITE}]
name = "Bench"
origins = ["{ORIGIN}"]
secret = "{os.urandom(16).hex()}"

[sites.{SITE}.settings]
free_shipping_over = 50
rescue_carts_over = 30
"""


@dataclass(frozen=True)
class Target:
    base: str
    pid: int
    rules: int = 0  # rules the server loaded, from its start-up log


def smoke_batch() -> bytes:
    """One page view, as the tag sends it."""
    event = f'{{"type":"page_view","ts":{int(time.time() * 1000)},"url":"{ORIGIN}/","ref":"",'
    event += '"props":{"page_type":"home","title":"Home"}}'
    ids = f'"visitor":"{"a" * 32}","session":"{"b" * 32}","batch":"{os.urandom(16).hex()}"'
    return f'{{"site":"{SITE}",{ids},"events":[{event}]}}'.encode()


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
    status, body = http(f"{base}/v1/events", smoke_batch())
    if status != 200 or b'"actions"' not in body:
        raise BenchError(f"POST /v1/events answered {status}: {body[:300].decode(errors='replace')}")


@contextlib.contextmanager
def floor_app(tmp: Path, redis: RedisServer, cpu: str) -> Iterator[Target]:
    """bench/floor_app.py under one uvicorn worker: Starlette + msgspec + one Redis pipeline."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "floor_app:app", "--host", HOST]
    cmd += ["--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "warning"]
    env = {**os.environ, "REDIS_URL": redis.url}
    base, log = f"http://{HOST}:{port}", tmp / "floor.log"
    with running(pinned(cmd, cpu), log, env, cwd=ROOT) as proc:
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
    tmp: Path,
    redis: RedisServer,
    cpu: str,
    rules_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Target]:
    """`storetag serve`, one worker, access log off, with the demo rules plus those in `rules_dir`."""
    port = free_port()
    sites = tmp / "sites.toml"
    sites.write_text(SITES_TOML)
    env = {**os.environ, "REDIS_URL": redis.url, "STORETAG_SITES": str(sites), "STORETAG_ACCESS_LOG": "0"}
    # All load comes from one address: limits out of reach, so every batch is served (and the limiter's
    # counting is still measured).
    env |= {"STORETAG_RATE_LIMIT_IP": str(10**9), "STORETAG_RATE_LIMIT_VISITOR": str(10**9)}
    # A saturated server core shared with neighbours lags its event loop past production's 50 ms Redis
    # timeout, and the breaker then answers whole seconds degraded (503): this measures throughput, not that.
    env |= {"STORETAG_REDIS_TIMEOUT_MS": "1000"}
    env |= ({"STORETAG_RULES": str(rules_dir)} if rules_dir else {}) | (extra_env or {})
    base, log = f"http://{HOST}:{port}", tmp / f"storetag-{port}.log"
    with running(pinned(storetag_command(port), cpu), log, env, cwd=ROOT) as proc:
        wait_until(lambda: answers(f"{base}/healthz"), proc, "storetag serve", log)
        try:
            smoke_test(base)
        except BenchError as exc:
            stop(proc)  # so that its log is complete
            raise BenchError(f"{exc}\n{log_tail(log)}") from exc
        loaded = re.search(r"(\d+) rules", log.read_text(errors="replace"))
        yield Target(base, proc.pid, int(loaded[1]) if loaded else 0)
        warn_if_chatty(log)


def warn_if_chatty(log: Path) -> None:
    """A server that logs per request measures its logging: say so, with its most frequent line."""
    lines = log.read_text(errors="replace").splitlines()
    if len(lines) > 100:
        # Drop the timestamp so that repeats of one message count together.
        common = Counter(re.sub(r"^[\d-]+ [\d:,]+ ", "", line) for line in lines).most_common(1)[0]
        print(f"   note: the server wrote {len(lines)} log lines under load; {common[1]} x {common[0]!r}")
