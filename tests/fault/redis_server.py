"""A redis-server a test owns: started, stopped, killed, frozen and restarted on one port and directory."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import accepts_connections, free_port, wait_until

AOF_EVERYSEC = ("--appendonly", "yes", "--appendfsync", "everysec", "--save", "")


class RedisServer:
    def __init__(self, directory: Path, *options: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: run `make test`, which installs it")
        self.binary = binary
        self.directory = directory
        self.options = options or ("--save", "", "--appendonly", "no")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory), *self.options]
        self.process = subprocess.Popen([self.binary, *args], stdout=subprocess.DEVNULL)
        wait_until(lambda: accepts_connections(self.port), what="redis-server")

    def stop(self) -> None:
        """A clean shutdown (SIGTERM); also what every test's teardown calls."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """A crash: SIGKILL, nothing flushed on the way out."""
        self._end(signal.SIGKILL)

    def freeze(self) -> None:
        """Black-holed: connections are still accepted by the kernel, but nothing ever answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def _end(self, how: signal.Signals) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGCONT)  # a frozen process cannot act on SIGTERM
        self.process.send_signal(how)
        self.process.wait(10)
        self.process = None
