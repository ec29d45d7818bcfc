"""A real `storetag serve` on a real 3-master Redis Cluster: the key layout holds, each visitor's keys in one
slot and visitors spread over every master, and the whole event, offer, coupon and stats path works."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from server.state import site_key, visitor_key
from tests.conftest import SITES_FILE, LiveServer, accepts_connections, free_port, wait_until
from tests.rulefiles import rule_source, write_rules
from tests.wire import SHOP_ORIGIN, batch, event, new_id, post

TOKEN = "cluster-admin-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
MASTERS = 3
# Offers a code from the WINTER pool when the visitor is about to leave from /leaving.
LEAVING_OFFER = rule_source(
    trigger="exit_intent", condition='visit.path == "/leaving"', action='Offer("offer.html", pool="WINTER")'
)


def cluster_is_ok(port: int) -> bool:
    info = redis.Redis(port=port).cluster("info")
    return bool(info["cluster_state"] == "ok" and int(info["cluster_known_nodes"]) == MASTERS)


@pytest.fixture(scope="module")
def cluster_ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    """Three masters, no replicas, nothing kept on disk; each node's bus on a port of its own."""
    server_binary, cli_binary = shutil.which("redis-server"), shutil.which("redis-cli")
    if server_binary is None or cli_binary is None:
        pytest.fail("redis-server and redis-cli are not installed: run `make test`, which installs them")
    workdir = tmp_path_factory.mktemp("cluster")
    ports = [free_port() for _ in range(MASTERS)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            node_dir = workdir / str(port)
            node_dir.mkdir()
            options = {"port": port, "cluster-port": free_port(), "bind": "127.0.0.1", "dir": node_dir}
            options |= {"cluster-enabled": "yes", "cluster-config-file": "nodes.conf"}
            options |= {"appendonly": "no", "save": ""}
            argv = [
                server_binary,
                *(word for name, value in options.items() for word in (f"--{name}", str(value))),
            ]
            processes.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL))
        for port in ports:
            wait_until(lambda port=port: accepts_connections(port), what=f"redis-server on {port}")
        nodes = [f"127.0.0.1:{port}" for port in ports]
        subprocess.run(
            [cli_binary, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        for port in ports:
            wait_until(lambda port=port: cluster_is_ok(port), timeout=20, what=f"cluster_state:ok on {port}")
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)


@pytest.fixture(scope="module")
def cluster_env(cluster_ports: list[int], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    rules = write_rules(tmp_path_factory.mktemp("rules"), leaving_offer=LEAVING_OFFER)
    return {
        # Any one node: the client learns the others and the slot map from it.
        "REDIS_URL": f"redis+cluster://127.0.0.1:{cluster_ports[1]}",
        "STORETAG_SITES": str(SITES_FILE),
        "STORETAG_RULES": str(rules),
        "STORETAG_ADMIN_TOKEN": TOKEN,
    }


@pytest.fixture(scope="module")
def server(cluster_env: dict[str, str]) -> Iterator[LiveServer]:
    port = free_port()
    live = LiveServer(["serve", "--port", str(port)], cluster_env, port)
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def worker(cluster_env: dict[str, str]) -> Iterator[None]:
    """A `storetag worker` on the cluster: it writes what the servers learned."""
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "storetag"), "worker"], env={**os.environ, **cluster_env}
    )
    try:
        yield
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


def send(http: httpx.Client, visitor: str, *events: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Posts one batch as the tag does; returns the answered actions by rule id."""
    response = http.post(
        "/v1/events",
        json=batch(*events, visitor=visitor),
        headers={"origin": SHOP_ORIGIN, "content-type": "text/plain"},
    )
    assert response.status_code == 200, response.text
    return {action["id"]: action for action in response.json()["actions"]}


def keys_per_node(ports: list[int], pattern: str) -> dict[int, set[str]]:
    """The keys each master holds itself (a node's SCAN sees only its own slots)."""
    found = {}
    for port in ports:
        node = redis.Redis(port=port, decode_responses=True)
        found[port] = set(node.scan_iter(match=pattern, count=1000))
        node.close()
    return found


def test_the_server_is_ready_on_the_cluster(http: httpx.Client) -> None:
    assert http.get("/readyz").json() == {"ok": True}


def test_visitors_state_spreads_over_every_master_one_slot_per_visitor(
    http: httpx.Client, cluster_ports: list[int]
) -> None:
    visitors = [new_id() for _ in range(60)]
    for visitor in visitors:
        assert send(http, visitor, event("page_view")) == {}
    state_keys = {visitor_key("shop", visitor, "state") for visitor in visitors}
    held = {port: keys & state_keys for port, keys in keys_per_node(cluster_ports, "st:*").items()}
    # 60 visitors over three masters: each holds some (the chance that one holds none is 3 in 10^11).
    assert all(held.values()), {port: len(keys) for port, keys in held.items()}
    assert set().union(*held.values()) == state_keys
    node = redis.Redis(port=cluster_ports[0])
    for visitor in visitors[:5]:
        slots = {
            node.cluster("keyslot", visitor_key("shop", visitor, part)) for part in ("state", "cart", "x")
        }
        assert len(slots) == 1
    site_slots = {
        node.cluster("keyslot", site_key("shop", part)) for part in ("pool:WINTER", "stats:2026-01-01")
    }
    assert len(site_slots) == 1
    node.close()


def test_a_first_time_visitor_is_welcomed_on_the_second_page(http: httpx.Client) -> None:
    visitor = new_id()
    assert send(http, visitor, event("page_view")) == {}
    welcome = send(http, visitor, event("page_view"))["welcome"]
    assert welcome["kind"] == "popup" and "Welcome" in welcome["html"]


def test_a_pooled_code_is_uploaded_offered_verified_and_redeemed_once(http: httpx.Client) -> None:
    codes = [f"CLUSTER-{n}" for n in range(3)]
    upload = http.post("/v1/admin/sites/shop/pools/WINTER", json={"codes": codes}, headers=AUTH)
    assert upload.json() == {"pool": "WINTER", "size": 3, "added": 3}
    visitor = new_id()
    offer = send(http, visitor, event("page_view", url="https://shop.test/leaving"))["leaving_offer"]
    code = offer["code"]
    assert code in codes and f"Code {code}" in offer["html"]
    assert http.get("/v1/admin/sites/shop/pools/WINTER", headers=AUTH).json()["size"] == 2
    verdict = http.get(f"/v1/admin/sites/shop/coupons/{code}", headers=AUTH).json()
    assert verdict["valid"] and verdict["rule"] == "leaving_offer"
    redeem = {"order_id": "cluster-order-1", "value": 42}
    assert (
        http.post(f"/v1/admin/sites/shop/coupons/{code}/redeem", json=redeem, headers=AUTH).status_code == 200
    )
    again = http.post(f"/v1/admin/sites/shop/coupons/{code}/redeem", json=redeem, headers=AUTH)
    assert again.status_code == 409 and again.json()["reason"] == "already redeemed"


def test_a_signed_code_redeemed_by_a_purchase_is_credited_in_the_stats(http: httpx.Client) -> None:
    visitor = new_id()
    cart = event("cart_add", id="mug", qty=1, price=40, name="Mug")
    offer = send(http, visitor, cart)["cart_rescue"]
    code = offer["code"]
    send(http, visitor, event("action_shown", action="cart_rescue"))
    send(http, visitor, event("purchase", order_id="cluster-order-2", value=40, code=code))
    verdict = http.get(f"/v1/admin/sites/shop/coupons/{code}", headers=AUTH).json()
    assert verdict["reason"] == "already redeemed"
    stats = http.get("/v1/admin/sites/shop/stats?days=1", headers=AUTH).json()["rules"]
    rescue = stats["cart_rescue"]
    assert (rescue["offered"], rescue["shown"], rescue["redeemed"], rescue["revenue"]) == (1, 1, 1, 40)


async def test_an_unreachable_cluster_makes_events_retry_later_and_readyz_fail(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    client = make_client(redis_url=f"redis+cluster://127.0.0.1:{free_port()}")
    ready = await client.get("/readyz")
    assert ready.status_code == 503 and "redis unavailable" in ready.json()["error"]
    events = await post(client, batch(event("page_view"), visitor=new_id()))
    assert events.status_code == 503 and events.headers["retry-after"] == "5"


def test_recommendations_learn_and_fill_slots_on_the_cluster(http: httpx.Client, worker: None) -> None:
    """Catalog, co-views queued by the server and written by a worker, the neighbour script and GET
    /v1/recs: the recs key families work over masters."""
    catalog = "\n".join(
        f'{{"id": "{item}", "title": "{item.title()} (cluster)", "price": 12, "url": "https://shop.test/p/{item}"}}'
        for item in ("kettle", "cups", "sugar")
    )
    imported = http.post(
        "/v1/admin/sites/shop/catalog",
        content=catalog,
        headers={**AUTH, "content-type": "application/x-ndjson"},
    )
    assert imported.status_code == 200 and imported.json()["loaded"] == 3, imported.text

    def product_page(item: str, *slots: str) -> list[dict[str, Any]]:
        url = f"https://shop.test/p/{item}"
        return [
            event("page_view", url=url, page_type="product", slots=list(slots)),
            event("product_view", url=url, id=item),
        ]

    for _ in range(3):
        visitor = new_id()
        for item in ("kettle", "cups"):
            send(http, visitor, *product_page(item))
    # What events teach is queued behind the answers (STORETAG_WRITE_BEHIND_MS) and written by the worker.
    deadline = time.monotonic() + 10
    while "product_recs" not in (answer := send(http, new_id(), *product_page("kettle", "product_recs"))):
        assert time.monotonic() < deadline, "the co-views were never learnt"
        time.sleep(0.05)
    recs = answer["product_recs"]
    assert [(item["id"], item["title"]) for item in recs["items"]] == [("cups", "Cups (cluster)")]
    query = {"site": "shop", "visitor": new_id(), "slot": "product_recs", "item": "kettle"}
    listed = http.get("/v1/recs", params=query, headers={"origin": SHOP_ORIGIN})
    assert [item["id"] for item in listed.json()["actions"][0]["items"]] == ["cups"]
