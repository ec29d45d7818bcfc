"""Push subscriptions: validated when the tag posts them, stored per visitor (one field per device), and
found again for a visitor, a customer (every device of every visitor who identified as them) or a site.

Keys: `st:{SITE:VISITOR}:push` (device id → subscription, creation time, last success), the identity index
`st:{SITE:c:CUSTOMER}:visitors` and its reverse `st:{SITE:VISITOR}:customer`, and the site's subscriber
index `st:{SITE}:push:subscribers` (visitor → when they last subscribed). Every key expires after the state
TTL.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import msgspec
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid.utils import b64urldecode

from server import protocol as p
from server.push_endpoints import UnsafeEndpoint, check_endpoint
from server.state import site_key, visitor_key


class BadSubscription(ValueError):
    pass


async def validate(subscription: p.PushSubscription, allow_private: bool) -> None:
    """Raises BadSubscription with what is wrong: keys that are not a P-256 point and a 16-byte secret,
    or an endpoint that is not an https URL on a public host."""
    try:
        p256dh = b64urldecode(subscription.keys.p256dh.encode())
        auth = b64urldecode(subscription.keys.auth.encode())
    except (binascii.Error, ValueError) as exc:
        raise BadSubscription(f"keys are not base64url: {exc}") from exc
    if len(p256dh) != 65 or p256dh[0] != 4:
        raise BadSubscription(
            f"keys.p256dh must be a 65-byte uncompressed P-256 point, not {len(p256dh)} bytes"
        )
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError as exc:
        raise BadSubscription("keys.p256dh is not a point on P-256") from exc
    if len(auth) != 16:
        raise BadSubscription(f"keys.auth must be 16 bytes, not {len(auth)}")
    try:
        await check_endpoint(subscription.endpoint, allow_private)
    except UnsafeEndpoint as exc:
        raise BadSubscription(str(exc)) from exc


def device_id(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()[:16]


class StoredDevice(msgspec.Struct, omit_defaults=True):
    endpoint: str
    p256dh: str
    auth: str
    created: int = 0


@dataclass(frozen=True)
class Device:
    visitor: str
    id: str
    endpoint: str
    p256dh: str
    auth: str
    created: int
    last_success: int

    def subscription_info(self) -> dict[str, object]:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


_encode = msgspec.msgpack.Encoder().encode
_decode_device = msgspec.msgpack.Decoder(StoredDevice).decode


class PushSubscriptions:
    def __init__(self, redis: aioredis.Redis, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s

    async def subscribe(
        self, site: str, visitor: str, subscription: p.PushSubscription, allow_private: bool, now_ms: int
    ) -> p.Subscribed:
        """Validates (BadSubscription says why) and stores."""
        await validate(subscription, allow_private)
        return p.Subscribed(await self.add(site, visitor, subscription, now_ms))

    async def unsubscribe(self, site: str, visitor: str, endpoint: str) -> bool:
        return await self.remove(site, visitor, device_id(endpoint))

    async def add(self, site: str, visitor: str, subscription: p.PushSubscription, now_ms: int) -> str:
        """Stores a validated subscription; posting the same endpoint again keeps its creation time."""
        device = device_id(subscription.endpoint)
        key = visitor_key(site, visitor, "push")
        existing = await self.redis.hget(key, f"s:{device}")
        created = _decode_device(existing).created if isinstance(existing, bytes) else now_ms
        stored = StoredDevice(
            subscription.endpoint, subscription.keys.p256dh, subscription.keys.auth, created
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, f"s:{device}", _encode(stored))
            pipe.expire(key, self.ttl_s)
            await pipe.execute()
        index = site_key(site, "push:subscribers")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(index, {visitor: now_ms})
            pipe.zremrangebyscore(index, "-inf", now_ms - self.ttl_s * 1000)
            pipe.expire(index, self.ttl_s)
            await pipe.execute()
        return device

    async def remove(self, site: str, visitor: str, device: str) -> bool:
        key = visitor_key(site, visitor, "push")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(key, f"s:{device}", f"t:{device}")
            pipe.hlen(key)
            removed, left = await pipe.execute()
        if not left:
            await self.redis.zrem(site_key(site, "push:subscribers"), visitor)
        return bool(removed)

    async def devices(self, site: str, visitors: Iterable[str]) -> dict[str, list[Device]]:
        """Visitor → their devices, for many visitors in one round trip."""
        wanted = list(dict.fromkeys(visitors))
        async with self.redis.pipeline(transaction=False) as pipe:
            for visitor in wanted:
                pipe.hgetall(visitor_key(site, visitor, "push"))
            hashes = await pipe.execute()
        return {visitor: _devices(visitor, fields) for visitor, fields in zip(wanted, hashes, strict=True)}

    async def mark_delivered(self, site: str, delivered: Iterable[Device], now_ms: int) -> None:
        """Notes each device's last success; a push reaching a device keeps it for another TTL. (A success
        racing an unsubscribe leaves a lone time, which `devices` ignores.)"""
        async with self.redis.pipeline(transaction=False) as pipe:
            for device in delivered:
                key = visitor_key(site, device.visitor, "push")
                pipe.hset(key, f"t:{device.id}", now_ms)
                pipe.expire(key, self.ttl_s)
            await pipe.execute()

    async def link_customer(self, site: str, customer: str, visitor: str) -> None:
        key = visitor_key(site, f"c:{customer}", "visitors")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(key, visitor)
            pipe.expire(key, self.ttl_s)
            await pipe.execute()
        # The reverse link lives in the visitor's slot: the worker finds the person when it sends.
        await self.redis.set(visitor_key(site, visitor, "customer"), customer, ex=self.ttl_s)

    async def customer_of(self, site: str, visitors: Iterable[str]) -> dict[str, str]:
        """Visitor → the customer they last identified as, for those identified, in one round trip."""
        wanted = list(dict.fromkeys(visitors))
        async with self.redis.pipeline(transaction=False) as pipe:
            for visitor in wanted:
                pipe.get(visitor_key(site, visitor, "customer"))
            found = await pipe.execute()
        return {v: c.decode() for v, c in zip(wanted, found, strict=True) if isinstance(c, bytes)}

    async def visitors_of(self, site: str, customer: str) -> list[str]:
        return (await self.customers(site, [customer]))[customer]

    async def customers(self, site: str, customers: Iterable[str]) -> dict[str, list[str]]:
        """Customer → the visitors who identified as them, for many customers in one round trip."""
        wanted = list(dict.fromkeys(customers))
        async with self.redis.pipeline(transaction=False) as pipe:
            for customer in wanted:
                pipe.smembers(visitor_key(site, f"c:{customer}", "visitors"))
            members = await pipe.execute()
        return {c: sorted(m.decode() for m in found) for c, found in zip(wanted, members, strict=True)}

    async def subscribers(self, site: str) -> AsyncIterator[str]:
        async for visitor, _ in self.redis.zscan_iter(site_key(site, "push:subscribers")):
            yield visitor.decode()


def _devices(visitor: str, fields: dict[bytes, bytes]) -> list[Device]:
    found = []
    for name, value in fields.items():
        kind, _, device = name.decode().partition(":")
        if kind == "s":
            stored = _decode_device(value)
            last = int(fields.get(f"t:{device}".encode(), 0))
            found.append(
                Device(visitor, device, stored.endpoint, stored.p256dh, stored.auth, stored.created, last)
            )
    return found
