"""Settings from the environment: the admin token is kept only as its SHA-256."""

from __future__ import annotations

import hashlib

import msgspec

from server.settings import settings_from_env

TOKEN = "plain-admin-token-0123456789"


def test_the_plain_admin_token_is_never_kept_in_settings() -> None:
    settings = settings_from_env({"STORETAG_ADMIN_TOKEN": TOKEN})
    assert settings.admin_token_sha256 == hashlib.sha256(TOKEN.encode()).hexdigest()
    everything = repr(settings) + str(msgspec.structs.asdict(settings))
    assert TOKEN not in everything
    assert TOKEN.encode().hex() not in everything


def test_a_token_given_as_its_sha256_is_used_as_is() -> None:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    settings = settings_from_env({"STORETAG_ADMIN_TOKEN_SHA256": digest.upper()})
    assert settings.admin_token_sha256 == digest


def test_limits_and_timeouts_come_from_the_environment() -> None:
    settings = settings_from_env(
        {
            "STORETAG_REDIS_TIMEOUT_MS": "80",
            "STORETAG_RATE_LIMIT_VISITOR": "10",
            "STORETAG_RATE_LIMIT_IP": "0",
            "STORETAG_RATE_WINDOW": "30",
            "STORETAG_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1",
            "STORETAG_RECS_CACHE_MS": "0",
        }
    )
    assert (settings.redis_timeout_ms, settings.rate_limit_visitor, settings.rate_limit_ip) == (80, 10, 0)
    assert (settings.rate_window_s, settings.trusted_proxies) == (30, ("10.0.0.0/8", "127.0.0.1"))
    assert settings.recs_cache_ms == 0


def test_without_environment_the_defaults_hold() -> None:
    settings = settings_from_env({})
    assert (settings.redis_timeout_ms, settings.rate_limit_visitor, settings.rate_limit_ip) == (50, 120, 1200)
    assert (settings.rate_window_s, settings.trusted_proxies, settings.admin_token_sha256) == (60, (), None)


def test_uvicorns_forwarded_allow_ips_names_the_trusted_proxies_when_storetags_own_setting_is_unset() -> None:
    assert settings_from_env({"FORWARDED_ALLOW_IPS": "*"}).trusted_proxies == ("*",)
    both = {"FORWARDED_ALLOW_IPS": "*", "STORETAG_TRUSTED_PROXIES": "10.0.0.2"}
    assert settings_from_env(both).trusted_proxies == ("10.0.0.2",)


def test_learning_goes_to_workers_with_a_redis_they_share_unless_off_or_written_before_each_answer() -> None:
    shared = {"REDIS_URL": "redis://redis:6379"}
    assert settings_from_env(shared).recs_learn_in_workers
    assert not settings_from_env({**shared, "STORETAG_RECS_LEARN_IN_WORKERS": "0"}).recs_learn_in_workers
    assert not settings_from_env({"STORETAG_RECS_LEARN_IN_WORKERS": "1"}).recs_learn_in_workers
    assert not settings_from_env({**shared, "STORETAG_WRITE_BEHIND_MS": "0"}).recs_learn_in_workers
