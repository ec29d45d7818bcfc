"""JSON responses every route shares: a Struct body, or a 4xx/5xx with {"error": message}."""

from __future__ import annotations

import msgspec
from starlette.responses import Response

from server import protocol as p


def json_response(body: msgspec.Struct, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(p.answer_encoder.encode(body), status, headers, media_type="application/json")


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(p.ErrorBody(message), status, headers)
