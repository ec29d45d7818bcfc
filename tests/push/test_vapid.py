"""`storetag vapid` and the VAPID header: keys a sites file accepts, JWTs that verify, one signature per
push service reused until shortly before it expires."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import msgspec
import pytest
from py_vapid import jwt

from server.sites import Site
from server.vapid import HEADER_LIFETIME_S, VapidSigner, check_site_keys
from tests.push.conftest import shop

STORETAG = str(Path(sys.executable).parent / "storetag")


def test_storetag_vapid_prints_a_key_pair_to_paste_into_the_sites_file(tmp_path: Path) -> None:
    printed = subprocess.run(
        [STORETAG, "vapid", "--site", "myshop", "--subject", "mailto:ops@myshop.example"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "[sites.myshop]" in printed
    section = tomllib.loads(printed)
    site = msgspec.convert({"name": "My Shop", **section}, Site)
    check_site_keys(site)
    token = VapidSigner(site).headers("https://push.example.net", 1_000)["Authorization"]
    fields = dict(part.split("=", 1) for part in token.removeprefix("vapid ").split(","))
    assert fields["k"] == site.vapid_public_key
    claims = jwt.decode(fields["t"], site.vapid_public_key)
    assert claims == {
        "aud": "https://push.example.net",
        "exp": 1_000 + HEADER_LIFETIME_S,
        "sub": "mailto:ops@myshop.example",
    }


def test_a_header_is_signed_once_per_push_service_and_renewed_before_it_expires() -> None:
    signer = VapidSigner(shop())
    first = signer.headers("https://fcm.googleapis.com", 1_000)
    assert signer.headers("https://fcm.googleapis.com", 1_000 + 3600) is first
    assert signer.headers("https://updates.push.services.mozilla.com", 1_000) != first
    assert signer.headers("https://fcm.googleapis.com", 1_000 + HEADER_LIFETIME_S - 60) != first


def test_keys_that_are_not_a_pair_are_refused_and_the_worker_does_not_start(tmp_path: Path) -> None:
    other = msgspec.structs.replace(shop(), vapid_private_key="Bb7br_sDc3kKztefWFWRY-r0fUuzHyBFlQ_55dualcA")
    with pytest.raises(ValueError, match="not the public half"):
        check_site_keys(other)
    sites = tmp_path / "sites.toml"
    sites.write_text(
        f'[sites.shop]\nname = "Shop"\nvapid_public_key = "{shop().vapid_public_key}"\n'
        'vapid_private_key = "not-a-key"\n'
    )
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0", "STORETAG_SITES": str(sites)}
    run = subprocess.run([STORETAG, "worker"], env=env, capture_output=True, text=True, timeout=30)
    assert run.returncode != 0 and "vapid_private_key is not a base64url P-256 key" in run.stderr
