"""The admin API under /v1/admin: coupon pools, coupon verification and redemption, rule stats, the
product catalog and recommendation stats, web pushes sent now, their stats and dead letters.

Every route needs `Authorization: Bearer TOKEN`; the server keeps only the token's SHA-256 and compares in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server import catalog_import
from server import protocol as p
from server.breaker import StoreUnavailable
from server.ingest import Runtime
from server.responses import error, json_response
from server.sites import Site
from server.state import UNAVAILABLE

Handler = Callable[[Request, Site], Awaitable[Response]]
# Admin answers are JSON for the shop's backend: never cached, never sniffed, framed or rendered as a page.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}
MAX_IMPORT_BYTES = 32 * 1024 * 1024


def admin_routes(runtime: Runtime) -> list[Route]:
    token_sha256 = runtime.settings.admin_token_sha256

    def guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            response = await answer(request)
            response.headers.update(SECURITY_HEADERS)
            return response

        async def answer(request: Request) -> Response:
            if token_sha256 is None:
                return error(403, "the admin API is off: set STORETAG_ADMIN_TOKEN")
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            presented = hashlib.sha256(token.encode()).hexdigest()
            if scheme.lower() != "bearer" or not hmac.compare_digest(presented, token_sha256):
                return error(401, "a valid bearer token is required")
            site = runtime.sites.get(request.path_params["site"])
            if site is None:
                return error(404, "unknown site")
            try:
                with runtime.breaker.guard():
                    return await handler(request, site)
            except msgspec.DecodeError as exc:
                return error(400, str(exc))
            except ValueError as exc:
                return error(400, str(exc))
            except (*UNAVAILABLE, StoreUnavailable):
                return error(503, "state store unavailable; retry later", {"Retry-After": "5"})

        return endpoint

    async def upload_pool(request: Request, site: Site) -> Response:
        upload = msgspec.json.decode(await request.body(), type=p.PoolUpload)
        pool = request.path_params["pool"]
        added, size = await runtime.coupons.add_to_pool(site.key, pool, upload.codes)
        return json_response(p.PoolSize(pool, size, added))

    async def pool_size(request: Request, site: Site) -> Response:
        pool = request.path_params["pool"]
        return json_response(p.PoolSize(pool, await runtime.coupons.pool_size(site.key, pool)))

    async def verify_coupon(request: Request, site: Site) -> Response:
        now_ms = int(runtime.clock() * 1000)
        return json_response(await runtime.coupons.verify(site, request.path_params["code"], now_ms))

    async def redeem_coupon(request: Request, site: Site) -> Response:
        redemption = msgspec.json.decode(await request.body(), type=p.Redemption)
        now_ms = int(runtime.clock() * 1000)
        verdict = await runtime.coupons.redeem(
            site, request.path_params["code"], redemption.order_id, redemption.value, now_ms
        )
        return json_response(verdict, 200 if verdict.valid else 409)

    async def rule_totals(request: Request, site: Site) -> Response:
        days = request.query_params.get("days", "7")
        if not days.isdigit() or not 1 <= int(days) <= 400:
            return error(400, "days must be a whole number from 1 to 400")
        totals = await runtime.stats.totals(site.key, int(days), int(runtime.clock() * 1000))
        return json_response(p.RuleTotals(int(days), totals))

    async def import_catalog(request: Request, site: Site) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_IMPORT_BYTES:
            return error(413, f"body over {MAX_IMPORT_BYTES // 2**20} MB; import larger files in parts")
        body = await request.body()
        csv = request.headers.get("content-type", "").startswith(("text/csv", "text/tab-separated-values"))
        lines = body.decode("utf-8", errors="replace").splitlines(keepends=True)
        rows = catalog_import.read_catalog(lines, "upload.csv" if csv else "upload.jsonl")
        report = await catalog_import.load(runtime.recs.catalog, site.key, site.currency, rows)
        return json_response(report, 200 if not report.refused else 422)

    async def product(request: Request, site: Site) -> Response:
        item = request.path_params["item"]
        found = (await runtime.recs.catalog.get(site.key, [item])).get(item)
        return json_response(found) if found else error(404, "unknown product")

    async def remove_product(request: Request, site: Site) -> Response:
        await runtime.recs.catalog.remove(site.key, [request.path_params["item"]])
        return Response(status_code=204)

    async def recs_stats(request: Request, site: Site) -> Response:
        rows: dict[tuple[str, str], p.RecsStat] = {}
        for name, value in sorted((await runtime.recs.signals.stats(site.key)).items()):
            slot, strategy, metric = name.split(" ", 2)
            row = rows.setdefault((slot, strategy), p.RecsStat(slot, strategy))
            setattr(row, metric, round(value, 2) if metric == "revenue" else int(value))
        return json_response(p.RecsStats(list(rows.values())))

    async def send_push(request: Request, site: Site) -> Response:
        if not site.vapid_private_key:
            return error(409, f"site {site.key!r} has no VAPID keys: run `storetag vapid`")
        order = msgspec.json.decode(await request.body(), type=p.PushSend)
        return json_response(await runtime.push.send_now(site, order, runtime.engine.segments), 202)

    async def push_stats(request: Request, site: Site) -> Response:
        found = await runtime.push.stats.of_push(site.key, request.path_params["push"])
        return json_response(found) if found else error(404, "no such push (stats are kept 30 days)")

    async def push_rule_stats(request: Request, site: Site) -> Response:
        return json_response(await runtime.push.stats.of_rules(site.key))

    async def dead_pushes(request: Request, site: Site) -> Response:
        limit = request.query_params.get("limit", "100")
        if not limit.isdigit() or not 1 <= int(limit) <= 10_000:
            return error(400, "limit must be a whole number from 1 to 10000")
        return json_response(p.DeadLetters(await runtime.push.queue.dead_letters(site.key, int(limit))))

    prefix = "/v1/admin/sites/{site}"
    return [
        Route(f"{prefix}/pools/{{pool:str}}", guarded(upload_pool), methods=["POST"]),
        Route(f"{prefix}/pools/{{pool:str}}", guarded(pool_size), methods=["GET"]),
        Route(f"{prefix}/coupons/{{code:str}}", guarded(verify_coupon), methods=["GET"]),
        Route(f"{prefix}/coupons/{{code:str}}/redeem", guarded(redeem_coupon), methods=["POST"]),
        Route(f"{prefix}/stats", guarded(rule_totals), methods=["GET"]),
        Route(f"{prefix}/catalog", guarded(import_catalog), methods=["POST"]),
        Route(f"{prefix}/catalog/{{item:path}}", guarded(product), methods=["GET"]),
        Route(f"{prefix}/catalog/{{item:path}}", guarded(remove_product), methods=["DELETE"]),
        Route(f"{prefix}/recs/stats", guarded(recs_stats), methods=["GET"]),
        Route(f"{prefix}/push", guarded(send_push), methods=["POST"]),
        Route(f"{prefix}/push/stats", guarded(push_rule_stats), methods=["GET"]),
        Route(f"{prefix}/push/dead", guarded(dead_pushes), methods=["GET"]),
        Route(f"{prefix}/push/{{push:str}}/stats", guarded(push_stats), methods=["GET"]),
    ]
