"""The `storetag` command: serve, demo, coupons, catalog import, vapid, worker."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from typing import TextIO

import msgspec
import uvicorn
import uvloop
from redis.exceptions import RedisError

from server.app import create_app
from server.catalog import Catalog
from server.catalog_import import load, read_catalog
from server.coupons import Coupons
from server.engine import BUILTIN_RULES_DIR, load_rules
from server.learner import Learner
from server.protocol import CatalogReport, CatalogRow
from server.push_sender import Sender
from server.recs import Recommender
from server.settings import settings_from_env
from server.sites import load_sites
from server.state import VisitorStore, connect
from server.vapid import check_site_keys, generate_keys
from server.worker import Worker

WORKER_REDIS_TIMEOUT_S = 5.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def serve(args: argparse.Namespace) -> None:
    settings = settings_from_env()
    uvicorn.run(
        "server.app:serving_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=settings.access_log,
        # The client's address (rate limits) comes from X-Forwarded-For only when sent by a trusted proxy.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies),
        log_level="info",
    )


def demo(args: argparse.Namespace) -> None:
    """The demo shop on one origin and the API on another, exactly as a real install."""
    from server.demo.catalog import catalog_rows
    from server.demo.shop import create_shop_app

    api_url = args.api_url or f"http://{args.host}:{args.api_port}"
    settings = msgspec.structs.replace(settings_from_env(), public_url=api_url)
    site = load_sites(settings.sites_file)["demo"]
    shop = create_shop_app(
        f"{api_url}/t/demo.js",
        site.name,
        float(site.settings.get("free_shipping_over", 50)),
        worker_src=f"{api_url}/sw.js",
    )
    api = None if args.api_url else create_app(settings)
    apps = [(shop, args.port)] if api is None else [(api, args.api_port), (shop, args.port)]
    servers = [
        uvicorn.Server(
            uvicorn.Config(
                app,
                host=args.host,
                port=port,
                log_level="info",
                access_log=settings.access_log,
                proxy_headers=bool(settings.trusted_proxies),
                forwarded_allow_ips=list(settings.trusted_proxies),
            )
        )
        for app, port in apps
    ]
    logging.getLogger("storetag").warning(
        "demo shop on http://%s:%d (tag and API on %s)", args.host, args.port, api_url
    )

    async def serve_all() -> None:
        await asyncio.gather(*(server.serve() for server in servers))

    async def run_all() -> None:
        if api is None:
            return await serve_all()
        runtime = api.state.runtime
        # The shop's catalogue, so recommendations show it from the first visit.
        rows = [msgspec.convert(row, CatalogRow) for row in catalog_rows(f"http://{args.host}:{args.port}")]
        await load(runtime.recs.catalog, site.key, site.currency, rows)
        if settings.redis_url is not None:  # pushes are sent by `storetag worker` processes on that Redis
            return await serve_all()
        # The embedded store lives in this process, so the push worker does too.
        stop = asyncio.Event()
        async with Sender(settings.push_allow_private, settings.push_concurrency) as sender:
            push_worker = Worker(
                settings,
                runtime.sites,
                runtime.store.redis,
                sender,
                consumer="demo",
                segments=runtime.engine.segments,
            )
            sending = asyncio.create_task(push_worker.run(stop))
            try:
                await serve_all()
            finally:
                stop.set()
                await sending

    asyncio.run(run_all())


def load_coupons(args: argparse.Namespace) -> None:
    """Adds the codes in a file (one a line) to a site's pool, in the Redis the servers share."""
    settings = settings_from_env()
    if settings.redis_url is None:
        raise SystemExit("storetag: set REDIS_URL; the embedded store lives inside a running server")
    if args.site not in load_sites(settings.sites_file):
        raise SystemExit(f"storetag: no site {args.site!r} in {settings.sites_file}")
    with open(args.file) as lines:
        codes = [line.strip() for line in lines if line.strip()]

    async def add() -> tuple[int, int]:
        redis = connect(settings.redis_url)
        try:
            return await Coupons(redis, VisitorStore(redis, settings.state_ttl_s)).add_to_pool(
                args.site, args.pool, codes
            )
        finally:
            await redis.aclose()

    try:
        added, size = asyncio.run(add())
    except ValueError as exc:
        raise SystemExit(f"storetag: {exc}") from exc
    print(f"pool {args.pool} of {args.site}: {added} new codes, {size} in the pool")


def import_catalog(args: argparse.Namespace) -> None:
    """Loads a catalog file into Redis; exits 1 when any row was refused (each named with its line)."""
    settings = settings_from_env()
    if settings.redis_url is None:
        raise SystemExit("storetag: set REDIS_URL; the embedded store lives inside one process only")
    sites = load_sites(settings.sites_file)
    key = args.site or (next(iter(sites)) if len(sites) == 1 else "")
    if key not in sites:
        raise SystemExit(f"storetag: name the site with --site, one of: {', '.join(sorted(sites))}")

    async def run(lines: TextIO) -> CatalogReport:
        redis = connect(settings.redis_url)
        try:
            return await load(Catalog(redis), key, sites[key].currency, read_catalog(lines, args.file))
        finally:
            await redis.aclose()

    try:
        # The CLI streams the file as it goes: a catalog of any size needs little memory.
        with open(args.file, encoding="utf-8", newline="") as lines:
            report = asyncio.run(run(lines))
    except (OSError, RedisError) as exc:
        raise SystemExit(f"storetag: {exc}") from exc
    for refusal in report.refused:
        print(f"{args.file}: {refusal}", file=sys.stderr)
    print(f"{report.loaded} products loaded, {len(report.refused)} refused")
    if report.refused:
        raise SystemExit(1)


def vapid(args: argparse.Namespace) -> None:
    """Prints a new VAPID key pair as the lines to put in a site's section of the sites file."""
    keys = generate_keys()
    print(f"# web push keys for [sites.{args.site}]; keep the private key out of version control")
    print(f'vapid_public_key = "{keys.public_key}"')
    print(f'vapid_private_key = "{keys.private_key}"')
    print(f'vapid_subject = "{args.subject}"')


def worker(args: argparse.Namespace) -> None:
    """Sends web pushes until SIGTERM or SIGINT: due ones from the schedules, and each site's stream; and
    writes what the servers learned for recommendations (unless STORETAG_RECS_LEARN_IN_WORKERS=0)."""
    settings = settings_from_env()
    if settings.redis_url is None:
        raise SystemExit("storetag: set REDIS_URL; workers and servers share the queue in Redis")
    sites = load_sites(settings.sites_file)
    for site in sites.values():
        try:
            check_site_keys(site)
        except ValueError as exc:
            raise SystemExit(f"storetag: {exc}") from exc

    # The same rules as the servers: the worker finds who is in a segment an admin push names.
    rule_dirs = [BUILTIN_RULES_DIR, *([settings.rules_dir] if settings.rules_dir else [])]
    _, segments = load_rules(rule_dirs)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        # The worker waits on Redis only in the background: a longer timeout than the request path's.
        redis = connect(settings.redis_url, WORKER_REDIS_TIMEOUT_S)
        try:
            async with Sender(settings.push_allow_private, settings.push_concurrency) as sender:
                consumer = args.name or f"{socket.gethostname()}-{os.getpid()}"
                worker = Worker(settings, sites, redis, sender, consumer=consumer, segments=segments)
                if settings.recs_learn_in_workers:
                    await asyncio.gather(worker.run(stop), Learner(Recommender(redis), sites).run(stop))
                else:
                    await worker.run(stop)
        finally:
            await redis.aclose()

    # uvloop (installed with uvicorn[standard]) makes the many small HTTP requests of sending much cheaper.
    uvloop.run(run())


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand and its options; docker/ is checked against it."""
    parser = argparse.ArgumentParser(prog="storetag", description="Storetag server")
    commands = parser.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser("serve", help="run the API server (settings from the environment)")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8000)
    serve_cmd.add_argument("--workers", type=int, default=1)
    serve_cmd.set_defaults(run=serve)

    demo_cmd = commands.add_parser("demo", help="run the demo shop and the API on the embedded store")
    demo_cmd.add_argument("--host", default="127.0.0.1")
    demo_cmd.add_argument("--port", type=int, default=8000, help="the shop's port")
    demo_cmd.add_argument("--api-port", type=int, default=8001)
    demo_cmd.add_argument("--api-url", help="use an API server you run yourself instead of starting one")
    demo_cmd.set_defaults(run=demo)

    coupons_cmd = commands.add_parser("coupons", help="coupon pools").add_subparsers(
        dest="action", required=True
    )
    load_cmd = coupons_cmd.add_parser("load", help="add codes from a file (one a line) to a pool")
    load_cmd.add_argument("site")
    load_cmd.add_argument("pool")
    load_cmd.add_argument("file")
    load_cmd.set_defaults(run=load_coupons)

    catalog_cmd = commands.add_parser("catalog", help="manage the product catalog of a site")
    catalog_commands = catalog_cmd.add_subparsers(dest="catalog_command", required=True)
    import_cmd = catalog_commands.add_parser(
        "import", help="upsert products from a JSON-lines or CSV file (.csv/.tsv) with merchant-feed fields"
    )
    import_cmd.add_argument("file")
    import_cmd.add_argument("--site", help="the site key (needed when the sites file has several)")
    import_cmd.set_defaults(run=import_catalog)

    vapid_cmd = commands.add_parser("vapid", help="make a VAPID key pair for a site's web push")
    vapid_cmd.add_argument("--site", default="SITE", help="the site key, for the printed section name")
    vapid_cmd.add_argument(
        "--subject", default="mailto:you@example.com", help="a mailto: or https: contact for push services"
    )
    vapid_cmd.set_defaults(run=vapid)

    worker_cmd = commands.add_parser("worker", help="send web pushes (one consumer of the workers' group)")
    worker_cmd.add_argument("--name", help="this consumer's name in the group (default: host and pid)")
    worker_cmd.set_defaults(run=worker)
    return parser


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=os.environ.get("STORETAG_LOG_LEVEL", "INFO"), format=LOG_FORMAT)
    args = build_parser().parse_args(argv)
    args.run(args)
