"""Single-use codes from pools and signatures, their verification and redemption, through the admin API."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from server.coupons import normalise
from tests.conftest import SITES_FILE
from tests.rulefiles import rule_source, write_rules
from tests.wire import batch, event, new_id, post

TOKEN = "admin-token-for-tests"
AUTH = {"authorization": f"Bearer {TOKEN}"}
POOL_OFFER = rule_source(trigger="exit_intent", action='Offer("offer.html", pool="WINTER")')
SIGNED_OFFER = rule_source(trigger="exit_intent", action='Offer("offer.html", percent=15, prefix="TAKE15")')


@pytest.fixture
def admin(make_client: Callable[..., httpx.AsyncClient], tmp_path: Path) -> httpx.AsyncClient:
    rules = write_rules(tmp_path, pool_offer=POOL_OFFER, signed_offer=SIGNED_OFFER)
    return make_client(admin_token_sha256=hashlib.sha256(TOKEN.encode()).hexdigest(), rules_dir=rules)


async def offers_for(client: httpx.AsyncClient, visitor: str) -> dict[str, Any]:
    answer = (await post(client, batch(event("page_view"), visitor=visitor))).json()
    return {action["id"]: action for action in answer["actions"] if action["kind"] == "offer"}


async def upload(client: httpx.AsyncClient, codes: list[str]) -> httpx.Response:
    return await client.post("/v1/admin/sites/shop/pools/WINTER", json={"codes": codes}, headers=AUTH)


async def test_the_admin_api_needs_the_token(
    admin: httpx.AsyncClient, make_client: Callable[..., httpx.AsyncClient]
) -> None:
    assert (await admin.get("/v1/admin/sites/shop/pools/WINTER")).status_code == 401
    wrong = {"authorization": "Bearer nope"}
    assert (await admin.get("/v1/admin/sites/shop/pools/WINTER", headers=wrong)).status_code == 401
    assert (await admin.get("/v1/admin/sites/nope/pools/WINTER", headers=AUTH)).status_code == 404
    off = await make_client().get("/v1/admin/sites/shop/pools/WINTER", headers=AUTH)
    assert off.status_code == 403 and "STORETAG_ADMIN_TOKEN" in off.json()["error"]


async def test_a_pool_upload_is_idempotent_and_refuses_bad_codes_whole(admin: httpx.AsyncClient) -> None:
    assert (await upload(admin, ["w-1", "W-2"])).json() == {"pool": "WINTER", "size": 2, "added": 2}
    assert (await upload(admin, ["W-1", "W-3"])).json() == {"pool": "WINTER", "size": 3, "added": 1}
    bad = await upload(admin, ["W-4", "no spaces"])
    assert bad.status_code == 400 and "no spaces" in bad.json()["error"].lower()
    size = await admin.get("/v1/admin/sites/shop/pools/WINTER", headers=AUTH)
    assert size.json()["size"] == 3


async def test_a_visitor_gets_one_code_from_the_pool_and_the_same_one_again(admin: httpx.AsyncClient) -> None:
    await upload(admin, [f"W-{n}" for n in range(5)])
    visitor = new_id()
    first = (await offers_for(admin, visitor))["pool_offer"]
    again = (await offers_for(admin, visitor))["pool_offer"]
    assert first["code"] == again["code"] and first["code"].startswith("W-")
    assert "Code " + first["code"] in first["html"]
    size = await admin.get("/v1/admin/sites/shop/pools/WINTER", headers=AUTH)
    assert size.json()["size"] == 4


async def test_fifty_visitors_racing_for_the_last_ten_codes_never_share_one(
    admin: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    await upload(admin, [f"LAST-{n}" for n in range(10)])
    answers = await asyncio.gather(*(offers_for(admin, new_id()) for _ in range(50)))
    codes = [offers["pool_offer"]["code"] for offers in answers if "pool_offer" in offers]
    assert sorted(codes) == sorted(f"LAST-{n}" for n in range(10))
    assert "EMPTY" in caplog.text


async def test_one_visitors_concurrent_tabs_share_one_code_and_the_others_go_back(
    admin: httpx.AsyncClient,
) -> None:
    # Each racing tab may pop a code; the losers put theirs back. (With fewer codes than racing tabs the
    # pool can look empty for an instant, and a tab then gets no offer: never a second code.)
    await upload(admin, [f"TAB-{n}" for n in range(30)])
    visitor = new_id()
    answers = await asyncio.gather(*(offers_for(admin, visitor) for _ in range(20)))
    assert len({offers["pool_offer"]["code"] for offers in answers}) == 1
    size = await admin.get("/v1/admin/sites/shop/pools/WINTER", headers=AUTH)
    assert size.json()["size"] == 29


async def verify(client: httpx.AsyncClient, code: str) -> dict[str, Any]:
    response = await client.get(f"/v1/admin/sites/shop/coupons/{code}", headers=AUTH)
    assert response.status_code == 200
    return dict(response.json())


async def test_a_signed_code_verifies_and_a_forged_one_does_not(admin: httpx.AsyncClient) -> None:
    code = (await offers_for(admin, new_id()))["signed_offer"]["code"]
    verdict = await verify(admin, code)
    assert verdict["valid"] and verdict["rule"] == "signed_offer" and verdict["percent"] == 15
    forged = code[:-1] + ("A" if code[-1] != "A" else "B")
    assert (await verify(admin, forged))["reason"].startswith("bad signature")
    assert (await verify(admin, "NEVER-ISSUED"))["reason"] == "unknown code"


async def test_an_offer_leading_its_slot_gets_its_code_and_record_with_the_batchs_own_write(
    make_client: Callable[..., httpx.AsyncClient], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, signed_offer=SIGNED_OFFER)
    client = make_client(admin_token_sha256=hashlib.sha256(TOKEN.encode()).hexdigest(), rules_dir=rules)
    visitor = new_id()
    code = (await offers_for(client, visitor))["signed_offer"]["code"]
    assert (await offers_for(client, visitor))["signed_offer"]["code"] == code
    verdict = await verify(client, code)
    assert verdict["valid"] and verdict["rule"] == "signed_offer" and verdict["percent"] == 15


async def test_a_purchase_with_the_code_redeems_it_once_and_credits_the_rule(
    admin: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    visitor = new_id()
    code = (await offers_for(admin, visitor))["signed_offer"]["code"]
    order = event("purchase", order_id="o-1", value=80, code=code.lower())
    assert (await post(admin, batch(order, visitor=visitor))).status_code == 200
    verdict = await verify(admin, code)
    assert not verdict["valid"] and verdict["reason"] == "already redeemed"
    again = await admin.post(
        f"/v1/admin/sites/shop/coupons/{code}/redeem", json={"order_id": "o-2", "value": 5}, headers=AUTH
    )
    assert again.status_code == 409 and again.json()["reason"] == "already redeemed"
    stats = (await admin.get("/v1/admin/sites/shop/stats?days=1", headers=AUTH)).json()
    assert stats["rules"]["signed_offer"]["redeemed"] == 1 and stats["rules"]["signed_offer"]["revenue"] == 80


async def test_an_expired_code_is_refused_with_its_reason(admin: httpx.AsyncClient) -> None:
    code = (await offers_for(admin, new_id()))["signed_offer"]["code"]
    runtime = admin._transport.app.state.runtime  # type: ignore[attr-defined]
    three_days_later = int((runtime.clock() + 3 * 86400) * 1000)
    verdict = await runtime.coupons.verify(runtime.sites["shop"], code, three_days_later)
    assert (verdict.valid, verdict.reason) == (False, "expired")


def test_the_cli_loads_a_pool_from_a_file(redis_url: str, tmp_path: Path) -> None:
    codes = tmp_path / "codes.txt"
    codes.write_text("CLI-1\ncli-2\n\nCLI-3\n")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "storetag"), "coupons", "load", "shop", "SPRING", str(codes)],
        env={**os.environ, "REDIS_URL": redis_url, "STORETAG_SITES": str(SITES_FILE)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "3 new codes, 3 in the pool" in result.stdout
    assert normalise(" cli-2 ") == "CLI-2"
