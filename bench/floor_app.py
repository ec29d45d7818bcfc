"""The floor for bench/events_load.py: Storetag's stack answering POST /v1/events with nothing of ours.

Starlette reads the body, msgspec decodes a batch shaped like Storetag's, one Redis pipeline counts the
events on a per-visitor key and renews its TTL, and the answer is an empty action list. What Storetag spends
above this is the cost of its own validation, visitor state and rules.

    REDIS_URL=redis://127.0.0.1:6379/0 uvicorn --app-dir bench floor_app:app
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

TTL_SECONDS = 90 * 24 * 3600


class FloorEvent(msgspec.Struct):
    type: str
    ts: int = 0
    url: str = ""
    ref: str = ""
    props: dict[str, str | int | float] = {}


class FloorBatch(msgspec.Struct):
    site: str
    visitor: str
    session: str
    events: list[FloorEvent]
    batch: str | None = None


class FloorAnswer(msgspec.Struct):
    actions: list[dict[str, str]]


decoder = msgspec.json.Decoder(FloorBatch)
encoder = msgspec.json.Encoder()


def json_response(content: object, status_code: int = 200) -> Response:
    return Response(encoder.encode(content), status_code=status_code, media_type="application/json")


async def post_events(request: Request) -> Response:
    try:
        batch = decoder.decode(await request.body())
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError too
        return json_response({"error": str(exc)}, status_code=400)
    redis: aioredis.Redis = request.app.state.redis
    key = f"floor:{{{batch.site}:{batch.visitor}}}:state"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hincrby(key, "events", len(batch.events))
        pipe.expire(key, TTL_SECONDS)
        await pipe.execute()
    return json_response(FloorAnswer(actions=[]))


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.redis = aioredis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        yield
    finally:
        await app.state.redis.aclose()


app = Starlette(routes=[Route("/v1/events", post_events, methods=["POST"])], lifespan=lifespan)
# As `storetag serve` does (server.app.serving_app): what the imports loaded stays out of full collections.
gc.collect()
gc.freeze()
