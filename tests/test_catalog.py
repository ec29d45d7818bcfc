"""The catalog: imports from files and the admin API, products first seen in events, removals."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from server import protocol as p
from server.catalog import Catalog, Product
from server.catalog_import import Refusal, load, read_catalog
from tests.conftest import SITES_FILE
from tests.wire import batch, event, new_id, post

ADMIN = {"authorization": "Bearer s3cret"}
MUG = {"id": "mug", "title": "Blue Mug", "price": 12, "url": "https://shop.test/p/mug", "category": "Kitchen"}


def rows(*lines: str, filename: str = "catalog.jsonl") -> list[p.CatalogRow | Refusal]:
    return list(read_catalog([line + "\n" for line in lines], filename))


def test_json_lines_carry_merchant_feed_fields_and_free_attributes() -> None:
    [row] = rows(
        json.dumps(
            {
                **MUG,
                "sale_price": 9.5,
                "brand": "Acme",
                "color": "blue",
                "image_url": "https://cdn.test/m.png",
            }
        )
    )
    assert isinstance(row, p.CatalogRow)
    assert (row.id, row.title, row.price, row.sale_price, row.brand) == ("mug", "Blue Mug", 12, 9.5, "Acme")
    assert row.image_url == "https://cdn.test/m.png" and row.attributes == {"color": "blue"}


def test_csv_reads_google_feed_names_and_prices_with_their_currency() -> None:
    [row] = rows(
        "id\ttitle\tlink\timage_link\tprice\tproduct_type\tavailability\tmaterial",
        "mug\tBlue Mug\thttps://shop.test/p/mug\thttps://cdn.test/m.png\t12.50 USD\t"
        "Home > Kitchen\tout of stock\tenamel",
        filename="feed.tsv",
    )
    assert isinstance(row, p.CatalogRow)
    assert (row.url, row.image_url, row.price, row.currency) == (
        "https://shop.test/p/mug",
        "https://cdn.test/m.png",
        12.5,
        "USD",
    )
    assert (row.category, row.availability, row.attributes) == (
        "Home > Kitchen",
        "out_of_stock",
        {"material": "enamel"},
    )


def test_bad_rows_are_refused_with_their_line_number_and_the_rest_still_reads() -> None:
    read = rows(
        "id,title,price,url",
        "mug,Blue Mug,12,https://shop.test/p/mug",
        ",No id,5,https://shop.test/p/x",
        "pot,Teapot,cheap,https://shop.test/p/pot",
        "evil,Evil,1,javascript:alert(1)",
        "cap,Cap,-3,https://shop.test/p/cap",
        "pen,Pen,3,https://shop.test/p/pen",
        filename="catalog.csv",
    )
    assert [str(row) if isinstance(row, Refusal) else row.id for row in read] == [
        "mug",
        "line 3: missing id",
        "line 4: Expected `float`, got `str` - at `$.price`",
        "line 5: not an http(s) URL - at `$.url`",
        "line 6: Expected `float` >= 0.0 - at `$.price`",
        "pen",
    ]


def test_a_json_line_that_is_not_an_object_is_refused() -> None:
    _, malformed, array = rows(json.dumps(MUG), "{oops", "[1, 2]")
    assert str(malformed).startswith("line 2: not JSON: JSON is malformed")
    assert str(array) == "line 3: a row must be an object"


async def in_category(catalog: Catalog, category: str) -> list[str]:
    """The category's products priced up to 100, as "similar" finds them."""
    ids, _ = await catalog.in_category("shop", category, 0, 100, 10, scored_by="no-scores")
    return list(ids)


async def test_imports_are_idempotent_upserts_that_move_products_between_categories(
    redis: aioredis.Redis,
) -> None:
    catalog = Catalog(redis)
    mug = p.CatalogRow(
        id="mug", title="Blue Mug", price=12, url="https://shop.test/p/mug", category="Kitchen"
    )
    for _ in range(2):
        assert (await load(catalog, "shop", "EUR", [mug])).loaded == 1
    assert await catalog.size("shop") == 1
    assert await in_category(catalog, "Kitchen") == ["mug"]
    moved = p.CatalogRow(
        id="mug", title="Blue Mug", price=12, url="https://shop.test/p/mug", category="Camping"
    )
    await load(catalog, "shop", "EUR", [moved])
    assert await in_category(catalog, "Kitchen") == []
    assert await in_category(catalog, "Camping") == ["mug"]
    [stored] = (await catalog.get("shop", ["mug"])).values()
    assert stored.imported and stored.currency == "EUR"


async def test_a_product_first_seen_in_an_event_is_recorded_minimally_and_completed_by_an_import(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    view = event(
        "product_view", url="https://shop.test/p/mug", id="mug", name="Mug", price=12, category="Kitchen"
    )
    await post(client, batch(view, visitor=new_id()))
    catalog = Catalog(redis)
    seen = (await catalog.get("shop", ["mug"]))["mug"]
    assert (seen.title, seen.url, seen.price, seen.imported) == ("Mug", "https://shop.test/p/mug", 12, False)

    row = p.CatalogRow(
        id="mug", title="Blue Enamel Mug", price=14, url="https://shop.test/p/mug", brand="Acme"
    )
    await load(catalog, "shop", "EUR", [row])
    renamed = event("product_view", url="https://shop.test/p/mug", id="mug", name="Spam!")
    await post(client, batch(renamed, visitor=new_id()))
    kept = (await catalog.get("shop", ["mug"]))["mug"]
    assert (kept.title, kept.brand, kept.imported) == ("Blue Enamel Mug", "Acme", True)


async def test_event_urls_are_made_absolute_and_anything_but_http_is_dropped(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    view = event(
        "product_view", url="https://shop.test/p/mug", id="mug", name="Mug", image_url="/img/mug.png"
    )
    evil = event(
        "product_view", url="https://shop.test/p/x", id="x", name="X", image_url="javascript:alert(1)"
    )
    evil["props"]["url"] = "javascript:alert(1)"
    await post(client, batch(view, evil, visitor=new_id()))
    products = await Catalog(redis).get("shop", ["mug", "x"])
    assert products["mug"].image_url == "https://shop.test/img/mug.png"
    assert (products["x"].url, products["x"].image_url) == ("", "")
    assert not products["x"].recommendable


async def test_a_removed_product_stays_removed_until_an_import_brings_it_back(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    catalog = Catalog(redis)
    await load(catalog, "shop", "EUR", [p.CatalogRow(**MUG)])
    await catalog.remove("shop", ["mug"])
    await post(client, batch(event("product_view", url=MUG["url"], id="mug", name="Mug"), visitor=new_id()))
    gone = (await catalog.get("shop", ["mug"]))["mug"]
    assert gone.removed and not gone.recommendable
    assert await in_category(catalog, "Kitchen") == []
    await load(catalog, "shop", "EUR", [p.CatalogRow(**MUG)])
    assert (await catalog.get("shop", ["mug"]))["mug"].recommendable


def test_out_of_stock_and_incomplete_products_are_not_recommendable() -> None:
    base = Product(id="mug", title="Mug", url="https://shop.test/p/mug")
    assert base.recommendable
    for other in (Product(id="mug", title="Mug"), Product(id="mug", url=base.url)):
        assert not other.recommendable
    assert not Product(id="mug", title="Mug", url=base.url, availability="out_of_stock").recommendable


@pytest.fixture
def admin(make_client: Callable[..., httpx.AsyncClient]) -> httpx.AsyncClient:
    return make_client(admin_token_sha256=hashlib.sha256(b"s3cret").hexdigest())


async def test_the_admin_api_refuses_calls_without_the_token(
    admin: httpx.AsyncClient, make_client: Callable[..., httpx.AsyncClient]
) -> None:
    url = "/v1/admin/sites/shop/catalog"
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "Basic s3cret"}):
        assert (await admin.post(url, content=json.dumps(MUG), headers=headers)).status_code == 401
    unset = make_client(admin_token_sha256=None)
    assert (await unset.post(url, content=json.dumps(MUG), headers=ADMIN)).status_code == 403
    assert (await admin.post("/v1/admin/sites/nope/catalog", headers=ADMIN)).status_code == 404


async def test_the_admin_api_imports_json_lines_and_csv_and_reports_refused_lines(
    admin: httpx.AsyncClient,
) -> None:
    body = "\n".join([json.dumps(MUG), json.dumps({**MUG, "id": "", "title": "x"})])
    response = await admin.post("/v1/admin/sites/shop/catalog", content=body, headers=ADMIN)
    assert response.status_code == 422
    assert response.json() == {"loaded": 1, "refused": ["line 2: missing id"]}
    csv = "id,title,price,url\npot,Teapot,29,https://shop.test/p/pot\n"
    response = await admin.post(
        "/v1/admin/sites/shop/catalog", content=csv, headers={**ADMIN, "content-type": "text/csv"}
    )
    assert response.status_code == 200 and response.json() == {"loaded": 1}
    product = await admin.get("/v1/admin/sites/shop/catalog/pot", headers=ADMIN)
    assert product.json()["title"] == "Teapot" and product.json()["imported"] is True


async def test_the_admin_api_removes_a_product(admin: httpx.AsyncClient) -> None:
    await admin.post("/v1/admin/sites/shop/catalog", content=json.dumps(MUG), headers=ADMIN)
    assert (await admin.delete("/v1/admin/sites/shop/catalog/mug", headers=ADMIN)).status_code == 204
    assert (await admin.get("/v1/admin/sites/shop/catalog/mug", headers=ADMIN)).json()["removed"] is True
    assert (await admin.get("/v1/admin/sites/shop/catalog/nope", headers=ADMIN)).status_code == 404


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "storetag"), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


async def test_the_cli_loads_the_good_rows_names_the_bad_ones_and_exits_non_zero(
    redis_url: str, redis: aioredis.Redis, tmp_path: Path
) -> None:
    good: dict[str, Any] = {**MUG}
    lines = [
        json.dumps(good),
        json.dumps({**good, "id": "pot", "url": "ftp://shop.test/pot"}),
        json.dumps({**good, "id": "cap"}),
    ]
    path = tmp_path / "catalog.jsonl"
    path.write_text("\n".join(lines) + "\n")
    env = {"REDIS_URL": redis_url, "STORETAG_SITES": str(SITES_FILE), "PATH": "/usr/bin:/bin"}
    result = run_cli("catalog", "import", str(path), "--site", "shop", env=env)
    assert result.returncode == 1
    assert f"{path}: line 2: not an http(s) URL - at `$.url`" in result.stderr
    assert "2 products loaded, 1 refused" in result.stdout
    assert set(await Catalog(redis).get("shop", ["mug", "pot", "cap"])) == {"mug", "cap"}

    path.write_text(lines[0] + "\n")
    assert run_cli("catalog", "import", str(path), "--site", "shop", env=env).returncode == 0
    missing_site = run_cli("catalog", "import", str(path), env=env)
    assert missing_site.returncode != 0 and "--site" in missing_site.stderr
