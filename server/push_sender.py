"""Sending one push to one device: pywebpush encrypts (aes128gcm) and posts over one shared aiohttp
session; the VAPID header comes from the site's cached signer."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from pywebpush import WebPusher

from server.push_endpoints import PublicResolver, UnsafeEndpoint, check_url
from server.push_subscriptions import Device
from server.sites import Site
from server.vapid import VapidSigner

TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)


@dataclass(frozen=True)
class Outcome:
    # The push service's HTTP status; 0 when no answer came (network error, refused endpoint).
    status: int
    retry_after: str | None = None
    error: str = ""
    unsafe: bool = False

    @property
    def delivered(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class Message:
    payload: bytes
    ttl: int
    urgency: str
    topic: str


class Sender:
    """Use as `async with Sender(...) as sender:`; the session and its connections live as long."""

    def __init__(self, allow_private: bool, concurrency: int) -> None:
        self.allow_private = allow_private
        self.concurrency = concurrency
        self._signers: dict[str, VapidSigner] = {}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Sender:
        connector = aiohttp.TCPConnector(
            resolver=PublicResolver(self.allow_private),
            limit=self.concurrency,
            limit_per_host=self.concurrency,
        )
        # Push services set no cookies and send tiny bodies: no jar, no decompression to pay for.
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    def signer(self, site: Site) -> VapidSigner:
        if site.key not in self._signers:
            self._signers[site.key] = VapidSigner(site)
        return self._signers[site.key]

    async def send(self, site: Site, device: Device, message: Message, now_s: float) -> Outcome:
        assert self._session is not None, "use the Sender as an async context manager"
        try:
            check_url(device.endpoint, self.allow_private)
        except UnsafeEndpoint as exc:
            return Outcome(0, error=str(exc), unsafe=True)
        parts = urlsplit(device.endpoint)
        headers = dict(self.signer(site).headers(f"{parts.scheme}://{parts.netloc}", now_s))
        headers["Urgency"] = message.urgency
        if message.topic:
            headers["Topic"] = message.topic
        pusher = WebPusher(device.subscription_info(), aiohttp_session=self._session)
        try:
            response = await pusher.send_async(message.payload, headers, ttl=message.ttl, timeout=TIMEOUT)
        except aiohttp.ClientConnectorError as exc:
            unsafe = isinstance(exc.os_error, UnsafeEndpoint)
            return Outcome(0, error=str(exc.os_error if unsafe else exc), unsafe=unsafe)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Outcome(0, error=f"{type(exc).__name__}: {exc}")
        return Outcome(response.status, response.headers.get("Retry-After"))
