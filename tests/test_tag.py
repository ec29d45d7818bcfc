"""GET /t/{site}.js and the lazy modules: config inlined, cacheable, compressed."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import httpx


async def test_the_tag_carries_its_sites_public_config(client: httpx.AsyncClient) -> None:
    response = await client.get("/t/shop.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    config = json.loads(re.search(r'\((\{"site":.*\})\)', response.text)[1])  # type: ignore[index]
    assert config["site"] == "shop"
    assert config["api"] == "http://storetag.test"
    assert config["modules"]["popup"].startswith("http://storetag.test/w/popup.js?v=")
    assert "test-secret" not in response.text


async def test_the_public_url_setting_names_the_api_origin(make_client: object) -> None:
    client = make_client(public_url="https://tags.example.com")  # type: ignore[operator]
    assert '"api":"https://tags.example.com"' in (await client.get("/t/shop.js")).text


async def test_the_tag_is_revalidated_with_its_etag(client: httpx.AsyncClient) -> None:
    first = await client.get("/t/shop.js")
    assert "max-age=300" in first.headers["cache-control"]
    again = await client.get("/t/shop.js", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


async def test_the_tag_is_gzipped_for_browsers_that_accept_it(client: httpx.AsyncClient) -> None:
    plain = await client.get("/t/shop.js", headers={"accept-encoding": "identity"})
    raw = await client.get("/t/shop.js", headers={"accept-encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw.content) == plain.content if raw.content[:2] == b"\x1f\x8b" else raw.content


async def test_each_site_gets_its_own_tag_and_unknown_sites_none(client: httpx.AsyncClient) -> None:
    assert '"site":"other"' in (await client.get("/t/other.js")).text
    missing = await client.get("/t/nope.js")
    assert missing.status_code == 404 and missing.json() == {"error": "unknown site"}


async def test_modules_are_cached_for_a_year_by_content_hash(client: httpx.AsyncClient) -> None:
    tag = (await client.get("/t/shop.js")).text
    module_url = re.search(r"http://storetag\.test(/w/popup\.js\?v=\w+)", tag)[1]  # type: ignore[index]
    module = await client.get(module_url)
    assert module.status_code == 200
    assert "immutable" in module.headers["cache-control"]
    assert (await client.get("/w/nope.js")).status_code == 404


def test_the_core_stays_within_its_gzip_budget_of_4_kb() -> None:
    from server.tag import TagAssets

    core = TagAssets().core_for("shop", "https://tags.example.com")
    assert len(core.gzipped) <= 4096, f"core is {len(core.gzipped)} bytes gzipped"


async def test_the_tag_names_the_recs_module_that_draws_slots(client: httpx.AsyncClient) -> None:
    tag = (await client.get("/t/shop.js")).text
    module_url = re.search(r"http://storetag\.test(/w/recs\.js\?v=\w+)", tag)[1]  # type: ignore[index]
    assert "data-storetag-slot" in (await client.get(module_url)).text


async def test_the_tag_carries_the_vapid_public_key_and_worker_path_but_never_the_private_key(
    make_client: object, tmp_path: Path
) -> None:
    sites = tmp_path / "sites.toml"
    sites.write_text(
        '[sites.shop]\nname = "Shop"\nvapid_public_key = "BPUB"\nvapid_private_key = "PRIVATE"\n'
        'push_worker = "/apps/storetag/sw.js"\n'
    )
    client = make_client(sites_file=sites)  # type: ignore[operator]
    tag = (await client.get("/t/shop.js")).text
    assert '"vapid_public_key":"BPUB","push_worker":"/apps/storetag/sw.js"' in tag
    assert "PRIVATE" not in tag
    assert re.search(r"http://storetag\.test/w/push\.js\?v=\w+", tag)


async def test_the_service_worker_is_served_to_any_origin_with_a_short_cache(
    client: httpx.AsyncClient,
) -> None:
    worker = await client.get("/sw.js")
    assert worker.status_code == 200
    assert worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["cache-control"] == "public, max-age=300"
    assert worker.headers["access-control-allow-origin"] == "*"
    assert 'addEventListener("push"' in worker.text and "notificationclick" in worker.text
