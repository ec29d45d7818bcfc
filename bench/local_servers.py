"""Servers the benchmarks start for themselves on 127.0.0.1: start, wait until ready, account CPU, stop."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """Something could not be started or measured; the message says why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(cmd: list[str], cpu: str) -> list[str]:
    """The command pinned to one CPU when taskset is there (taskset execs it: the pid stays the same)."""
    taskset = shutil.which("taskset")
    return [taskset, "-c", cpu, *cmd] if taskset else cmd


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stops a process we started, with its own process group, politely then firmly."""
    if proc.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
            return


@contextlib.contextmanager
def running(
    cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        stop(proc)


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C while inside, so every server started is stopped by its finally block."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def log_tail(log: Path, lines: int = 15) -> str:
    text = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return "\n".join(text[-lines:])


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with {proc.returncode}:\n{log_tail(log)}")
        if ready():
            return
        time.sleep(0.1)
    raise BenchError(f"{what} not ready after {START_TIMEOUT:.0f} s:\n{log_tail(log)}")


# --- CPU accounting -------------------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc/PID/stat (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time the processes of the whole machine ran, plus what the hypervisor stole, from /proc/stat.

    Interrupt time is left out: it is charged to no process, so it would look like a neighbour's.
    """
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]
    )
    return (user + nice + system + steal) / CLOCK_TICKS


@dataclass(frozen=True)
class CpuSnapshot:
    wall: float
    machine: float
    processes: dict[int, float]

    @classmethod
    def take(cls, pids: list[int]) -> CpuSnapshot:
        return cls(time.monotonic(), machine_busy_seconds(), {p: process_cpu_seconds(p) for p in pids})


# --- redis ----------------------------------------------------------------------------------------------


def redis_command(port: int, *args: str) -> bytes:
    """Sends one command in RESP and returns the first line of the reply."""
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
    with socket.create_connection((HOST, port), timeout=2) as sock:
        sock.sendall(payload.encode())
        return sock.recv(4096).split(b"\r\n", 1)[0]


def redis_ready(port: int) -> bool:
    try:
        return redis_command(port, "PING") == b"+PONG"
    except OSError:
        return False


@dataclass(frozen=True)
class RedisServer:
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"


@contextlib.contextmanager
def redis_server(tmp: Path, cpu: str) -> Iterator[RedisServer]:
    """A throwaway redis-server on a free port, without persistence, in a directory of its own."""
    if not shutil.which("redis-server"):
        raise BenchError("redis-server not found: run `make bench`, which installs it")
    port = free_port()
    cmd = ["redis-server", "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no"]
    log = tmp / "redis.log"
    with running(pinned([*cmd, "--dir", str(tmp)], cpu), log) as proc:
        wait_until(lambda: redis_ready(port), proc, "redis-server", log)
        yield RedisServer(port, proc.pid)
