"""Web push throughput: pushes per second one worker sends to a local push service (bench/push_sink.py,
in a process of its own), payload encryption and VAPID included, against pywebpush's plain synchronous
`webpush()` to the same service in the same run as the baseline. Goal: ≥ 2x the baseline and ≥ 1,000/s.

The worker's figure is the whole path: jobs read from the site's stream by the consumer group, each
visitor's device read from Redis, the payload encrypted (aes128gcm, a fresh ECDH key per push), POSTed over
one aiohttp session, stats written and the jobs acknowledged.

    .venv/bin/python bench/push_throughput.py [--pushes 5000] [--baseline 500]

Prints the figures and writes bench/PUSH.md. Everything it starts listens on 127.0.0.1 and stops.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import uvloop
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from local_servers import HOST, free_port, pinned, redis_server, running, wait_until
from py_vapid import Vapid02
from pywebpush import webpush

from server import protocol as p
from server.push_queue import PushJob, PushQueue
from server.push_sender import Sender
from server.push_subscriptions import PushSubscriptions
from server.settings import Settings
from server.sites import Site
from server.state import connect
from server.vapid import generate_keys
from server.worker import Worker

BENCH = Path(__file__).parent
REPORT = BENCH / "PUSH.md"
KEYS = generate_keys()
SITE = Site(
    key="bench",
    name="Bench",
    vapid_public_key=KEYS.public_key,
    vapid_private_key=KEYS.private_key,
    vapid_subject="mailto:bench@example.com",
)
NOTIFICATION = p.Notification(
    push="bench0000000000",
    title="You left something in your cart",
    body="2 items worth 37.00 EUR are waiting for you.",
    icon="https://shop.example/icon-192.png",
    url="https://shop.example/cart",
    api="https://tags.example.com",
    site="bench",
)


def subscription(endpoint: str) -> dict[str, object]:
    """A browser's subscription: a fresh P-256 public key and auth secret (the sink decrypts nothing)."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    auth = os.urandom(16)
    return {"endpoint": endpoint, "keys": {"p256dh": b64url(point), "auth": b64url(auth)}}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) == 0


async def worker_rate(redis_url: str, sink: str, pushes: int) -> tuple[float, float]:
    """Pushes per second of one in-process Worker draining `pushes` jobs, one device each, and the CPU
    milliseconds this process spent per push meanwhile."""
    settings = Settings(redis_url=redis_url, push_allow_private=True)
    redis = connect(redis_url, 5.0)
    subscriptions, queue = PushSubscriptions(redis, 3600), PushQueue(redis)
    device = msgspec.convert(subscription(f"{sink}/push/x"), p.PushSubscription)
    for n in range(pushes):
        endpoint = msgspec.structs.replace(device, endpoint=f"{sink}/push/{n}")
        await subscriptions.add(SITE.key, f"visitor-{n:06d}-bench", endpoint, 0)
    jobs = [
        PushJob(
            notification=msgspec.structs.replace(NOTIFICATION, visitor=f"visitor-{n:06d}-bench"),
            visitor=f"visitor-{n:06d}-bench",
        )
        for n in range(pushes)
    ]
    await queue.ensure_group(SITE.key)
    await queue.enqueue(SITE.key, jobs)
    async with Sender(True, settings.push_concurrency) as sender:
        worker = Worker(settings, {SITE.key: SITE}, redis, sender, consumer="bench")
        started, cpu_started = time.perf_counter(), time.process_time()
        sent = 0
        while handled := await worker.run_once():
            sent += handled
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    stats = await worker.stats.of_rules(SITE.key)
    await redis.aclose()
    delivered = stats.rules[""].delivered
    if delivered != pushes:
        raise SystemExit(f"only {delivered} of {pushes} pushes were delivered")
    return sent / elapsed, cpu / sent * 1000


def baseline_rate(sink: str, pushes: int) -> float:
    """pywebpush's one-call `webpush()`: a JWT signed and a new connection per push, one at a time."""
    vapid = Vapid02.from_raw(KEYS.private_key.encode())
    device = subscription(f"{sink}/push/baseline")
    data = msgspec.json.encode(NOTIFICATION).decode()
    started = time.perf_counter()
    for _ in range(pushes):
        webpush(
            device, data, vapid_private_key=vapid, vapid_claims={"sub": "mailto:bench@example.com"}, ttl=60
        )
    return pushes / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=5000, help="pushes the worker sends")
    parser.add_argument("--baseline", type=int, default=500, help="pushes the synchronous baseline sends")
    args = parser.parse_args()
    # The sender on one core, the push service and Redis on the other, as far as this machine allows.
    os.sched_setaffinity(0, {0})
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp), "1") as redis:
        port = free_port()
        sink_log = Path(tmp) / "sink.log"
        sink_cmd = pinned([sys.executable, str(BENCH / "push_sink.py"), str(port)], "1")
        with running(sink_cmd, sink_log) as sink:
            wait_until(lambda: accepts(port), sink, "push sink", sink_log)
            url = f"http://{HOST}:{port}"
            load_before = os.getloadavg()
            baseline = baseline_rate(url, args.baseline)
            worker, cpu_ms = uvloop.run(worker_rate(redis.url, url, args.pushes))
            load_after = os.getloadavg()
    ratio = worker / baseline
    lines = [
        f"one worker:            {worker:8.0f} pushes/s ({args.pushes} pushes, encryption, VAPID, Redis)",
        f"worker CPU per push:   {cpu_ms:8.2f} ms       ({1000 / cpu_ms:,.0f} pushes/s on a core of its own)",
        f"pywebpush webpush():   {baseline:8.0f} pushes/s ({args.baseline} pushes, synchronous baseline)",
        f"ratio:                 {ratio:8.1f}x   (goal: >= 2x and >= 1,000/s: "
        f"{'met' if ratio >= 2 and worker >= 1000 else 'NOT met'})",
        f"load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load_before)}; "
        f"after: {', '.join(f'{v:.2f}' for v in load_after)}; {os.cpu_count()} CPUs",
    ]
    print("\n".join(lines))
    write_report(lines)


def write_report(lines: list[str]) -> None:
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    REPORT.write_text(
        "# Web push throughput\n\n"
        f"`make bench-push` on {today}, by bench/push_throughput.py (the method is in its docstring).\n\n"
        "```\n" + "\n".join(lines) + "\n```\n\n"
        "How: the sender (on uvloop, as `storetag worker` runs) is pinned to core 0; Redis and\n"
        "the receiver (bench/push_sink.py, a bare keep-alive HTTP responder, so the receiving side costs\n"
        "little) to core 1. The baseline is pywebpush's one-call `webpush()` as its README shows it: a JWT\n"
        'signed and a new connection per push, one push at a time. "on a core of its own" is 1 / CPU per\n'
        "push: what one worker sends when nothing else competes for its core. The machine has two cores and\n"
        "is shared with other engineers' test runs; the load average says how busy it was, and a busy\n"
        "machine lowers the first figure, not the CPU per push.\n"
    )


if __name__ == "__main__":
    main()
