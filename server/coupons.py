"""Single-use discount codes: pools the shop uploads, and codes the server generates and signs.

A visitor gets one code per offer rule and keeps it: the code lives in the visitor's state, assigned with the
state's compare-and-set, so concurrent requests cannot hand the same visitor two codes (a signed code for
an offer that leads its slot is assigned in the batch's own compare-and-set, with no write of its own). A
pool code leaves the pool with SPOP, which is atomic, so no code is ever handed out twice; a code popped by
a request that lost the race for the visitor goes back. Every issued code has a record (rule, visitor,
expiry, redemption) for verification and attribution. Generated codes also verify by signature alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import struct
from collections.abc import Iterable

import msgspec
import redis.asyncio as aioredis

from server.protocol import CouponVerdict
from server.rules import Offer
from server.sites import Site
from server.state import VisitorStore, site_key
from server.visitor import IssuedCode, VisitorState

log = logging.getLogger("storetag.coupons")

CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,63}$")
POOL_TTL_S = 400 * 86400
RECORD_GRACE_S = 30 * 86400
LOW_POOL = 20
POOL_CHUNK = 1000
POP_TRIES = 4
HOUR_S = 3600
# Generated codes: PREFIX-BODY, BODY = base32(expiry hour, percent, 5 random bytes, 5 bytes of HMAC).
_BODY = struct.Struct(">IB5s")
_MAC_BYTES = 5


class CodeRecord(msgspec.Struct, omit_defaults=True):
    rule: str
    visitor: str
    expires: int
    percent: int = 0


class RedeemedBy(msgspec.Struct):
    at: int
    order_id: str
    value: float


# A code just given: the rule, its offer, the code.
Issued = tuple[str, Offer, IssuedCode]

record_decoder = msgspec.json.Decoder(CodeRecord)
redemption_decoder = msgspec.json.Decoder(RedeemedBy)


def normalise(code: str) -> str:
    return code.strip().upper()


def _mac(site: Site, prefix: str, body: bytes) -> bytes:
    return hmac.new(site.secret.encode(), prefix.encode() + b"-" + body, hashlib.sha256).digest()[:_MAC_BYTES]


def generate(site: Site, prefix: str, percent: int, expires_ms: int) -> str:
    expiry_hour = -(-expires_ms // (HOUR_S * 1000))  # rounded up: never shorter than promised
    body = _BODY.pack(expiry_hour, percent, secrets.token_bytes(5))
    text = base64.b32encode(body + _mac(site, prefix, body)).decode().rstrip("=")
    return f"{prefix}-{text}"


def held_code(state: VisitorState, rule_id: str, now_ms: int) -> IssuedCode | None:
    """The code the visitor holds for this rule, while it is valid."""
    held = state.codes.get(rule_id)
    return held if held is not None and held.expires > now_ms else None


def verify_signature(site: Site, code: str, now_ms: int) -> CouponVerdict | None:
    """The verdict on a generated code from its signature alone; None when it is not a generated code."""
    prefix, _, text = code.rpartition("-")
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError:
        return None
    if len(raw) != _BODY.size + _MAC_BYTES or not site.secret:
        return None
    body, mac = raw[: _BODY.size], raw[_BODY.size :]
    if not hmac.compare_digest(mac, _mac(site, prefix, body)):
        return CouponVerdict(code, False, "bad signature: not a code this shop issued")
    expiry_hour, percent, _ = _BODY.unpack(body)
    expires = expiry_hour * HOUR_S * 1000
    if now_ms > expires:
        return CouponVerdict(code, False, "expired", percent=percent, expires=expires)
    return CouponVerdict(code, True, percent=percent, expires=expires)


class Coupons:
    def __init__(self, redis: aioredis.Redis, store: VisitorStore) -> None:
        self.redis = redis
        self.store = store

    async def add_to_pool(self, site: str, pool: str, codes: Iterable[str]) -> tuple[int, int]:
        """Adds codes to a pool; returns (codes new to the pool, pool size)."""
        clean = sorted({normalise(code) for code in codes})
        bad = [code for code in clean if not CODE.match(code)]
        if bad:
            raise ValueError(f"codes must be 3 to 64 of A-Z 0-9 _ -, not {bad[:3]}")
        key = site_key(site, f"pool:{pool}")
        # In chunks, not one transaction: one huge SADD would stall Redis for every visitor, and adding is
        # idempotent, so an upload cut short is simply sent again.
        async with self.redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(clean), POOL_CHUNK):
                pipe.sadd(key, *clean[start : start + POOL_CHUNK])
            pipe.expire(key, POOL_TTL_S)
            pipe.scard(key)
            *added, _, size = await pipe.execute()
        return sum(int(count) for count in added), int(size)

    async def pool_size(self, site: str, pool: str) -> int:
        return int(await self.redis.scard(site_key(site, f"pool:{pool}")))

    async def issue(
        self,
        site: Site,
        visitor: str,
        rule_id: str,
        offer: Offer,
        now_ms: int,
        state: VisitorState | None = None,
    ) -> IssuedCode | None:
        """The visitor's code for this rule: the one they already have while it is valid, or a new one;
        None if the pool is empty or the site cannot sign codes. `state`: the visitor's state as just
        written, which saves reading it again."""
        current = held_code(state or await self.store.load(site.key, visitor), rule_id, now_ms)
        if current is not None:
            return current
        expires_ms = now_ms + offer.valid_s * 1000
        if offer.pool:
            code = await self._pop_for(site.key, visitor, rule_id, offer.pool, now_ms)
            if isinstance(code, IssuedCode):
                return code
        elif site.secret:
            code = generate(site, offer.prefix, offer.percent, expires_ms)
        else:
            log.error("site %s has no secret to sign generated codes; offer %s skipped", site.key, rule_id)
            return None
        if code is None:
            return None

        def assign(state: VisitorState) -> IssuedCode:
            held = held_code(state, rule_id, now_ms)
            if held is None:
                held = state.codes[rule_id] = IssuedCode(code, expires_ms)
            return held

        _, issued = await self.store.update(site.key, visitor, assign)
        if issued.code != code:  # another request of this visitor's won the race
            if offer.pool:
                await self.redis.sadd(site_key(site.key, f"pool:{offer.pool}"), code)
            return issued
        await self.write_records(site, visitor, [(rule_id, offer, issued)])
        return issued

    def sign_in_state(
        self, site: Site, state: VisitorState, offers: Iterable[tuple[str, Offer]], now_ms: int
    ) -> list[Issued]:
        """Generates a code for each of these (rule id, offer) that signs its codes and the visitor holds
        none valid of, into the state (to be written by the caller's compare-and-set, retried with it);
        returns them for write_records."""
        fresh: list[Issued] = []
        for rule_id, offer in offers:
            if offer.pool or not site.secret or held_code(state, rule_id, now_ms) is not None:
                continue
            expires_ms = now_ms + offer.valid_s * 1000
            issued = state.codes[rule_id] = IssuedCode(
                generate(site, offer.prefix, offer.percent, expires_ms), expires_ms
            )
            fresh.append((rule_id, offer, issued))
        return fresh

    async def write_records(self, site: Site, visitor: str, issued: Iterable[Issued]) -> None:
        """The records of codes just given to this visitor, for verification and attribution."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for rule_id, offer, code in issued:
                record = CodeRecord(rule_id, visitor, code.expires, offer.percent)
                pipe.set(
                    site_key(site.key, f"code:{code.code}"),
                    msgspec.json.encode(record),
                    ex=offer.valid_s + RECORD_GRACE_S,
                )
            await pipe.execute()

    async def _pop_for(
        self, site: str, visitor: str, rule_id: str, pool: str, now_ms: int
    ) -> str | IssuedCode | None:
        """A code from the pool; or, when it is empty, the code this visitor got meanwhile. An empty pool
        may be empty only for a moment: the visitor's other tabs hold codes they put back once one of
        them has won the visitor's, so a few tries wait for that."""
        for _ in range(POP_TRIES):
            code = await self._pop(site, pool)
            if code is not None:
                return code
            held = held_code(await self.store.load(site, visitor), rule_id, now_ms)
            if held is not None:
                return held
        return None

    async def _pop(self, site: str, pool: str) -> str | None:
        key = site_key(site, f"pool:{pool}")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.spop(key)
            pipe.scard(key)
            popped, left = await pipe.execute()
        if popped is None:
            log.warning("coupon pool %s of site %s is EMPTY: its offers are not shown", pool, site)
            return None
        if left < LOW_POOL:
            log.warning("coupon pool %s of site %s is running low: %d codes left", pool, site, left)
        return bytes(popped).decode()

    async def verify(self, site: Site, code: str, now_ms: int) -> CouponVerdict:
        code = normalise(code)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(site_key(site.key, f"code:{code}"))
            pipe.get(site_key(site.key, f"redeemed:{code}"))
            raw_record, raw_redemption = await pipe.execute()
        signed = verify_signature(site, code, now_ms)
        if raw_record is None and signed is None:
            return CouponVerdict(code, False, "unknown code")
        record = record_decoder.decode(raw_record) if raw_record else None
        verdict = signed or CouponVerdict(code, True, percent=record.percent if record else 0)
        if record is not None:
            verdict = msgspec.structs.replace(verdict, rule=record.rule, expires=record.expires)
        if raw_redemption is not None:
            at = redemption_decoder.decode(raw_redemption).at
            return msgspec.structs.replace(verdict, valid=False, reason="already redeemed", redeemed=at)
        if verdict.valid and now_ms > verdict.expires:
            return msgspec.structs.replace(verdict, valid=False, reason="expired")
        return verdict

    async def redeem(self, site: Site, code: str, order_id: str, value: float, now_ms: int) -> CouponVerdict:
        """Marks a valid code redeemed by an order, once; the verdict names the rule to credit."""
        verdict = await self.verify(site, code, now_ms)
        if not verdict.valid:
            return verdict
        redemption = msgspec.json.encode(RedeemedBy(now_ms, order_id, value))
        ttl_s = RECORD_GRACE_S + max(0, (verdict.expires - now_ms) // 1000)
        key = site_key(site.key, f"redeemed:{verdict.code}")
        if not await self.redis.set(key, redemption, nx=True, ex=ttl_s):
            return msgspec.structs.replace(verdict, valid=False, reason="already redeemed")
        return msgspec.structs.replace(verdict, redeemed=now_ms)
