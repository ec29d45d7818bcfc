"""Fault fixtures: a Redis of the test's own, and `storetag serve` processes pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from server.settings import Settings
from tests.conftest import SITES_FILE, LiveServer, free_port
from tests.fault.redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_api(redis_server: RedisServer) -> Iterator[Callable[..., LiveServer]]:
    """Starts `storetag serve` processes on the test's Redis; extra environment as keyword arguments."""
    servers: list[LiveServer] = []

    def start(**env: str) -> LiveServer:
        port = free_port()
        base = {
            "REDIS_URL": redis_server.url,
            "STORETAG_SITES": str(SITES_FILE),
            "STORETAG_REDIS_TIMEOUT_MS": str(Settings().redis_timeout_ms),
        }
        servers.append(LiveServer(["serve", "--port", str(port)], {**base, **env}, port))
        return servers[-1]

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
