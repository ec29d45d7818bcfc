"""A push service that accepts everything at once (201), for bench/push_throughput.py: it reads each body
and checks nothing, so the sender's side is what is measured.

    python bench/push_sink.py PORT
"""

from __future__ import annotations

import sys

from aiohttp import web


async def accept(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=201)


def main() -> None:
    app = web.Application()
    app.router.add_post("/push/{device}", accept)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
