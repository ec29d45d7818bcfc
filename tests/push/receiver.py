"""A local push service that is also the browser: it holds each subscription's private key, checks the
VAPID JWT on every request (ES256 signature against the site's public key, audience, expiry), decrypts the
aes128gcm payload (RFC 8291) with http_ece, and answers what the test asks for (201 by default)."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import http_ece
import msgspec
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import jwt

from server import protocol as p
from tests.conftest import free_port


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Device:
    """A browser's push subscription: its own P-256 key pair and 16-byte auth secret."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self) -> dict[str, Any]:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"endpoint": self.endpoint, "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)}}


@dataclass(frozen=True)
class Received:
    device: str
    notification: p.Notification
    headers: dict[str, str]
    claims: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    status: int
    retry_after: str | None = None


class Receiver:
    def __init__(self, vapid_public_key: str, delay_s: float = 0.0) -> None:
        self.vapid_public_key = vapid_public_key
        self.delay_s = delay_s
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.devices: dict[str, Device] = {}
        self.received: list[Received] = []
        # What a device gets: errors the receiver found (a bad JWT, a payload it cannot decrypt).
        self.refused: list[str] = []
        self.requests: defaultdict[str, int] = defaultdict(int)
        self._answers: defaultdict[str, deque[Answer]] = defaultdict(deque)
        self._runner: web.AppRunner | None = None

    def device(self) -> Device:
        name = f"d{len(self.devices)}"
        self.devices[name] = Device(f"{self.origin}/push/{name}")
        return self.devices[name]

    def answer(self, device: Device, *answers: Answer) -> None:
        """The next answers to this device's pushes, in order; then 201."""
        self._answers[device.endpoint.rsplit("/", 1)[1]].extend(answers)

    def for_device(self, device: Device) -> list[Received]:
        name = device.endpoint.rsplit("/", 1)[1]
        return [got for got in self.received if got.device == name]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/push/{device}", self._push)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _claims(self, authorization: str) -> dict[str, Any]:
        scheme, _, params = authorization.partition(" ")
        assert scheme == "vapid", f"Authorization scheme {scheme!r}"
        fields = dict(part.strip().split("=", 1) for part in params.split(","))
        assert fields["k"] == self.vapid_public_key, "signed with another key than the site's"
        claims: dict[str, Any] = jwt.decode(fields["t"], self.vapid_public_key)  # verifies ES256
        now = time.time()
        assert claims["aud"] == self.origin, f"aud {claims['aud']!r}"
        assert now < claims["exp"] <= now + 24 * 3600, "exp not within the next 24 hours"
        assert claims["sub"].startswith(("mailto:", "https:"))
        return claims

    async def _push(self, request: web.Request) -> web.Response:
        name = request.match_info["device"]
        self.requests[name] += 1
        device = self.devices.get(name)
        if device is None:
            return web.Response(status=404)
        body = await request.read()
        try:
            claims = self._claims(request.headers.get("Authorization", ""))
            assert request.headers.get("Content-Encoding") == "aes128gcm"
            plain = http_ece.decrypt(
                body, private_key=device.private_key, auth_secret=device.auth, version="aes128gcm"
            )
            notification = msgspec.json.decode(plain, type=p.Notification)
        except Exception as exc:
            self.refused.append(f"{name}: {exc!r}")
            return web.Response(status=403, text=str(exc))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        queued = self._answers[name]
        answer = queued.popleft() if queued else Answer(201)
        if 200 <= answer.status < 300:
            headers = {k: request.headers[k] for k in ("TTL", "Urgency", "Topic") if k in request.headers}
            self.received.append(Received(name, notification, headers, claims))
        retry = {"Retry-After": answer.retry_after} if answer.retry_after else {}
        return web.Response(status=answer.status, headers=retry)
