"""Browser fixtures: the demo shop and the API as real processes, driven by real headless Chromium."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright

from tests.conftest import LiveServer, free_port

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling home, which this machine refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def eventually(read: Callable[[], Awaitable[T]], expected: T, within_s: float = 5.0) -> None:
    """Waits until read() returns expected, as a person would wait for the page to settle."""
    deadline = time.monotonic() + within_s
    while (value := await read()) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r}, expected {expected!r} after {within_s} s")
        await asyncio.sleep(0.05)


@dataclass
class Shop:
    url: str
    api: LiveServer


# What one page teaches recommendations is drawn on the very next page, which the tests open at once: written
# before each answer rather than behind it (the default, 250 ms later; tests/test_write_behind.py), and every
# list read afresh rather than reused for 10 s (tests/test_recs.py), as each test starts from an empty Redis.
AT_ONCE = {"STORETAG_WRITE_BEHIND_MS": "0", "STORETAG_RECS_CACHE_MS": "0"}


@pytest.fixture(scope="session")
def shop(redis_url: str) -> Iterator[Shop]:
    shop_port, api_port = free_port(), free_port()
    shop_url = f"http://127.0.0.1:{shop_port}"
    env = {"REDIS_URL": redis_url, "STORETAG_ALLOWED_ORIGINS": shop_url, **AT_ONCE}
    server = LiveServer(["demo", "--port", str(shop_port), "--api-port", str(api_port)], env, api_port)
    yield Shop(shop_url, server)
    server.stop()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@dataclass
class PageProblems:
    """What a visitor's browser would complain about: console errors and uncaught exceptions."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.console_errors.append(message.text)

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile: a new visitor."""
    context = await browser.new_context()
    yield context
    await context.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


@pytest.fixture
def problems(page: Page) -> PageProblems:
    problems = PageProblems()
    problems.watch(page)
    return problems
