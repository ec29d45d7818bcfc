"""Settings, read once from the environment."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

DEFAULT_SITES_FILE = Path(__file__).parent / "demo" / "sites.toml"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    # None selects the embedded in-process store: state is neither shared nor persistent.
    redis_url: str | None = None
    sites_file: Path = DEFAULT_SITES_FILE
    # Rule modules beyond the built-in rules/ package, e.g. a shop's own directory.
    rules_dir: Path | None = None
    # Origins allowed for every site on top of each site's own list (staging, local development).
    allowed_origins: tuple[str, ...] = ()
    # Where browsers reach this server; None means the request's own base URL.
    public_url: str | None = None
    session_timeout_s: int = 30 * 60
    state_ttl_s: int = 90 * 24 * 3600
    # SHA-256 (hex) of the admin API's bearer token; None disables the admin API.
    admin_token_sha256: str | None = None
    # A header a trusted proxy or CDN sets to the visitor's ISO country code, e.g. "CF-IPCountry".
    country_header: str = ""
    access_log: bool = True
    # How long one Redis command (connect, send, reply) may take before the request answers degraded.
    redis_timeout_ms: int = 50
    # Batches /v1/events takes per window from one visitor and from one client IP; 0 turns a limit off.
    rate_limit_visitor: int = 120
    rate_limit_ip: int = 1200
    rate_window_s: int = 60
    # Proxies trusted to name the client in X-Forwarded-For (IPs, CIDR ranges or "*"); none: the client is
    # the connection's own address.
    trusted_proxies: tuple[str, ...] = ()
    # Recommendations: learning from events and filling slots.
    recs: bool = True
    # How long a process reuses the lists it read from Redis: a product's neighbour lists (viewed and bought
    # together, the cosines for you blends) and a site's popular and trending lists; 0 reads every list.
    recs_cache_ms: int = 10_000
    # Servers queue what recommendations learn and `storetag worker` processes write it, a server's share of
    # learning then being one command per flush; with no worker running, servers write the queue themselves.
    # Off: each server writes its own at once (the default for a Settings made in code, as tests do).
    recs_learn_in_workers: bool = False
    # Web push. Endpoints on private, loopback or link-local addresses (and plain http) are refused unless
    # this is on: for tests and local receivers only, never in production.
    push_allow_private: bool = False
    # An idle worker looks for due and new pushes this often.
    push_poll_ms: int = 500
    # A job a worker took and has not acknowledged after this long (the worker died) goes to another.
    push_claim_idle_ms: int = 60_000
    # Attempts per device on 429, 5xx or a network error before the push is dead-lettered; the wait doubles
    # from push_retry_base_ms, or is the push service's Retry-After, at most push_retry_max_s.
    push_max_attempts: int = 5
    push_retry_base_ms: int = 10_000
    push_retry_max_s: int = 3600
    # Sends one worker keeps in flight.
    push_concurrency: int = 256
    # Rule stats, what recommendations learn and per-IP rate counts are merged in memory and written this
    # often (server/write_behind.py); 0 writes them before each answer.
    write_behind_ms: int = 250


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _admin_token_hash(token: str | None, token_sha256: str | None) -> str | None:
    if token_sha256:
        return token_sha256.lower()
    return hashlib.sha256(token.encode()).hexdigest() if token else None


def settings_from_env(env: Mapping[str, str] = os.environ) -> Settings:
    def get(name: str) -> str | None:
        return env.get(name) or None

    def number(name: str, default: int) -> int:
        value = get(name)
        return int(value) if value else default

    timeout, ttl = get("STORETAG_SESSION_TIMEOUT"), get("STORETAG_STATE_TTL")
    learn_in_workers = env.get("STORETAG_RECS_LEARN_IN_WORKERS", "1") not in ("0", "false", "no")
    write_behind_ms = number("STORETAG_WRITE_BEHIND_MS", 250)
    sites, rules_dir = get("STORETAG_SITES"), get("STORETAG_RULES")
    return Settings(
        redis_url=get("REDIS_URL"),
        sites_file=Path(sites) if sites else DEFAULT_SITES_FILE,
        rules_dir=Path(rules_dir) if rules_dir else None,
        allowed_origins=_split(env.get("STORETAG_ALLOWED_ORIGINS", "")),
        public_url=(get("STORETAG_PUBLIC_URL") or "").rstrip("/") or None,
        session_timeout_s=int(timeout) if timeout else 30 * 60,
        state_ttl_s=int(ttl) if ttl else 90 * 24 * 3600,
        admin_token_sha256=_admin_token_hash(get("STORETAG_ADMIN_TOKEN"), get("STORETAG_ADMIN_TOKEN_SHA256")),
        country_header=env.get("STORETAG_COUNTRY_HEADER", ""),
        access_log=env.get("STORETAG_ACCESS_LOG", "1") not in ("0", "false", "no"),
        redis_timeout_ms=number("STORETAG_REDIS_TIMEOUT_MS", 50),
        rate_limit_visitor=number("STORETAG_RATE_LIMIT_VISITOR", 120),
        rate_limit_ip=number("STORETAG_RATE_LIMIT_IP", 1200),
        rate_window_s=number("STORETAG_RATE_WINDOW", 60),
        # FORWARDED_ALLOW_IPS is uvicorn's own name for it (docker/compose.yaml sets it).
        trusted_proxies=_split(get("STORETAG_TRUSTED_PROXIES") or env.get("FORWARDED_ALLOW_IPS", "")),
        recs=env.get("STORETAG_RECS", "1") not in ("0", "false", "no"),
        recs_cache_ms=number("STORETAG_RECS_CACHE_MS", 10_000),
        # The embedded store lives inside one process, where no worker could reach a queue; and with no
        # write-behind interval every lesson is to be written before the answer.
        recs_learn_in_workers=learn_in_workers and bool(get("REDIS_URL")) and write_behind_ms > 0,
        push_allow_private=env.get("STORETAG_PUSH_ALLOW_PRIVATE", "0") in ("1", "true", "yes"),
        push_poll_ms=number("STORETAG_PUSH_POLL_MS", 500),
        push_claim_idle_ms=number("STORETAG_PUSH_CLAIM_IDLE_MS", 60_000),
        push_max_attempts=number("STORETAG_PUSH_MAX_ATTEMPTS", 5),
        push_retry_base_ms=number("STORETAG_PUSH_RETRY_BASE_MS", 10_000),
        push_retry_max_s=number("STORETAG_PUSH_RETRY_MAX", 3600),
        push_concurrency=number("STORETAG_PUSH_CONCURRENCY", 256),
        write_behind_ms=write_behind_ms,
    )
