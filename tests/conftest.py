"""Fixtures shared by the whole suite: a real redis-server on a free port and the app wired to it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import redis.asyncio as aioredis
from starlette.applications import Starlette

from server.app import create_app
from server.settings import Settings

TESTS_DIR = Path(__file__).parent
SITES_FILE = TESTS_DIR / "sites.toml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def accepts_connections(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run `make test`, which installs it")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: accepts_connections(port), what="redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushall()
    yield client
    await client.aclose()


# Servers, Redis and Chromium share two busy cores here: a scheduling stall past production's short Redis
# timeout would answer a test's batch degraded. The fault tests run with production's timeout.
TEST_REDIS_TIMEOUT_MS = 1000


@pytest.fixture
def settings(redis_url: str) -> Settings:
    # Written before each answer, so a test reads what it has just sent (tests/test_write_behind.py checks
    # the default, written behind).
    return Settings(
        redis_url=redis_url, sites_file=SITES_FILE, redis_timeout_ms=TEST_REDIS_TIMEOUT_MS, write_behind_ms=0
    )


@pytest.fixture
async def make_client(
    settings: Settings, redis: aioredis.Redis
) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """Builds the app with settings overridden and a client calling it in-process."""
    clients: list[httpx.AsyncClient] = []
    apps: list[Starlette] = []

    def make(**overrides: Any) -> httpx.AsyncClient:
        app = create_app(msgspec.structs.replace(settings, **overrides))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://storetag.test")
        clients.append(client)
        apps.append(app)
        return client

    yield make
    for client in clients:
        await client.aclose()
    for app in apps:
        await app.state.runtime.store.redis.aclose()


@pytest.fixture
def client(make_client: Callable[..., httpx.AsyncClient]) -> httpx.AsyncClient:
    return make_client()


class LiveServer:
    """A real `storetag` process on a free port."""

    def __init__(self, args: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "storetag"), *args],
            env={
                **os.environ,
                "STORETAG_ACCESS_LOG": "0",
                "STORETAG_REDIS_TIMEOUT_MS": str(TEST_REDIS_TIMEOUT_MS),
                **env,
            },
        )
        try:
            wait_until(lambda: accepts_connections(port), timeout=20, what=f"storetag {args[0]}")
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture(scope="session")
def api_server(redis_url: str) -> Iterator[LiveServer]:
    port = free_port()
    server = LiveServer(
        ["serve", "--port", str(port)], {"REDIS_URL": redis_url, "STORETAG_SITES": str(SITES_FILE)}, port
    )
    yield server
    server.stop()
