"""The Starlette application: routes decode, call one function, encode."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server import protocol as p
from server.admin import admin_routes
from server.breaker import StoreUnavailable
from server.engine import BUILTIN_RULES_DIR
from server.ingest import Refused, build_runtime
from server.push_subscriptions import BadSubscription
from server.responses import error, json_response
from server.settings import Settings, settings_from_env
from server.sites import load_sites
from server.state import UNAVAILABLE, ConflictError, connect
from server.tag import Asset, TagAssets

log = logging.getLogger("storetag")

JSON = "application/json"
DEGRADED_HEADERS = {"Retry-After": "5", "Storetag-Degraded": "redis"}


def degraded(cors: dict[str, str]) -> Response:
    """While Redis is unreachable: 503 (so the tag keeps the batch to resend), nothing to show, and a
    header saying why."""
    body = p.DegradedAnswer([], error="state store unavailable; retry later")
    return json_response(body, 503, {**cors, **DEGRADED_HEADERS})


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is over `limit` bytes (stops reading there)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def from_the_tag(request: Request) -> tuple[str | None, dict[str, str], bytes | None]:
    """A request the tag sends: its origin, the CORS headers for the answer, and its body (None: too large,
    answer `too_large(cors)`)."""
    origin = request.headers.get("origin")
    cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else {}
    return origin, cors, await read_body(request, p.MAX_BODY_BYTES)


def too_large(cors: dict[str, str]) -> Response:
    return error(413, f"body over {p.MAX_BODY_BYTES // 1024} KB", cors)


def asset_response(request: Request, asset: Asset) -> Response:
    headers = {
        "ETag": asset.etag,
        "Cache-Control": asset.cache_control,
        "Vary": "Accept-Encoding",
        "Access-Control-Allow-Origin": "*",
    }
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = asset.body
    if "gzip" in request.headers.get("accept-encoding", ""):
        body, headers["Content-Encoding"] = asset.gzipped, "gzip"
    return Response(body, headers=headers, media_type="text/javascript; charset=utf-8")


def serving_app() -> Starlette:
    """The app as `storetag serve` runs it in each worker process. What start-up loaded (rules, templates,
    locale data) lives as long as the process, so it is frozen out of the collector's full passes: each
    would scan all of it (30-50 ms with 1,000 rules) while every request in flight waits."""
    app = create_app()
    gc.collect()
    gc.freeze()
    return app


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or settings_from_env()
    rule_dirs = [BUILTIN_RULES_DIR, *([settings.rules_dir] if settings.rules_dir else [])]
    runtime = build_runtime(
        settings,
        load_sites(settings.sites_file),
        connect(settings.redis_url, settings.redis_timeout_ms / 1000),
        rule_dirs,
    )
    engine = runtime.engine
    tag = TagAssets()
    log.info("storetag: %d sites, %d rules", len(runtime.sites), len(engine.rules))

    def api_origin(request: Request) -> str:
        return settings.public_url or str(request.base_url).rstrip("/")

    async def serve_tag(request: Request) -> Response:
        site = runtime.sites.get(request.path_params["site"])
        if site is None:
            return error(404, "unknown site")
        core = tag.core_for(site.key, api_origin(request), site.vapid_public_key, site.push_worker)
        return asset_response(request, core)

    async def serve_module(request: Request) -> Response:
        module = tag.modules.get(request.path_params["name"])
        if module is None:
            return error(404, "unknown module")
        return asset_response(request, module)

    async def serve_worker(request: Request) -> Response:
        return asset_response(request, tag.worker)

    def country_of(request: Request) -> str:
        code = request.headers.get(settings.country_header, "") if settings.country_header else ""
        return code.upper() if len(code) == 2 and code.isalpha() else ""

    async def post_events(request: Request) -> Response:
        origin, cors, body = await from_the_tag(request)
        if body is None:
            return too_large(cors)
        try:
            batch = p.batch_decoder.decode(body)
            with runtime.breaker.guard():
                answer = await runtime.ingest(
                    batch,
                    origin,
                    user_agent=request.headers.get("user-agent", ""),
                    accept_language=request.headers.get("accept-language", ""),
                    country=country_of(request),
                    client_ip=request.client.host if request.client else "",
                )
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            return error(400, str(exc), cors)
        except Refused as refused:
            retry = {"Retry-After": str(refused.retry_after_s)} if refused.retry_after_s else {}
            return error(refused.status, refused.message, {**cors, **retry})
        except (*UNAVAILABLE, StoreUnavailable):  # the breaker logs when Redis goes and comes back
            return degraded(cors)
        except ConflictError as exc:
            log.warning("events not stored: %s", exc)
            return degraded(cors)
        return json_response(answer, headers=cors)

    async def get_recs(request: Request) -> Response:
        origin = request.headers.get("origin")
        headers = {"Cache-Control": "no-store", **({"Access-Control-Allow-Origin": origin} if origin else {})}
        try:
            query = msgspec.convert(dict(request.query_params), p.RecsQuery, strict=False)
            with runtime.breaker.guard():
                answer = await runtime.recs_for(query, origin)
        except msgspec.ValidationError as exc:
            return error(400, str(exc), headers)
        except Refused as refused:
            return error(refused.status, refused.message, headers)
        except (*UNAVAILABLE, StoreUnavailable):
            return degraded(headers)
        return json_response(answer, headers=headers)

    def preflight(methods: str) -> Callable[[Request], Awaitable[Response]]:
        async def answer(request: Request) -> Response:
            origin = request.headers.get("origin", "")
            sites = runtime.sites.values()
            if not origin or not any(site.allows_origin(origin, settings.allowed_origins) for site in sites):
                return error(403, f"origin {origin!r} is not allowed")
            return Response(
                status_code=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": methods,
                    "Access-Control-Allow-Headers": "Content-Type",
                    "Access-Control-Max-Age": "86400",
                    "Vary": "Origin",
                },
            )

        return answer

    async def push_subscription(request: Request) -> Response:
        """POST stores a device's subscription, DELETE removes it; both as text/plain from the tag."""
        origin, cors, body = await from_the_tag(request)
        if body is None:
            return too_large(cors)
        subscriptions = runtime.push.subscriptions
        now_ms = int(runtime.clock() * 1000)
        try:
            if request.method == "POST":
                order = msgspec.json.decode(body, type=p.Subscribe)
                runtime.site_for(order.site, origin)
                with runtime.breaker.guard():
                    stored = await subscriptions.subscribe(
                        order.site, order.visitor, order.subscription, settings.push_allow_private, now_ms
                    )
                return json_response(stored, 201, cors)
            gone = msgspec.json.decode(body, type=p.Unsubscribe)
            runtime.site_for(gone.site, origin)
            with runtime.breaker.guard():
                await subscriptions.unsubscribe(gone.site, gone.visitor, gone.endpoint)
            return Response(status_code=204, headers=cors)
        except (msgspec.DecodeError, BadSubscription) as exc:
            return error(400, str(exc), cors)
        except Refused as refused:
            return error(refused.status, refused.message, cors)
        except (*UNAVAILABLE, StoreUnavailable):
            return degraded(cors)

    async def healthz(request: Request) -> Response:
        return Response(b'{"ok":true}', media_type=JSON)

    async def readyz(request: Request) -> Response:
        try:
            with runtime.breaker.guard():
                await runtime.store.ping()
        except (*UNAVAILABLE, StoreUnavailable) as exc:
            return error(503, f"redis unavailable: {exc}")
        return Response(b'{"ok":true}', media_type=JSON)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        try:
            await runtime.close()
        except (*UNAVAILABLE, StoreUnavailable) as exc:
            log.warning("shutting down: what was written behind is lost: %r", exc)
        await runtime.store.redis.aclose()

    app = Starlette(
        routes=[
            Route("/t/{site}.js", serve_tag),
            Route("/w/{name}.js", serve_module),
            Route("/sw.js", serve_worker),
            Route("/v1/events", post_events, methods=["POST"]),
            Route("/v1/events", preflight("POST"), methods=["OPTIONS"]),
            Route("/v1/push/subscriptions", push_subscription, methods=["POST", "DELETE"]),
            Route("/v1/push/subscriptions", preflight("POST, DELETE"), methods=["OPTIONS"]),
            Route("/v1/recs", get_recs, methods=["GET"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *admin_routes(runtime),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
