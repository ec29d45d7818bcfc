"""A push service that accepts everything at once (201), for bench/push_throughput.py: a bare HTTP/1.1
keep-alive responder on uvloop that skips each body and checks nothing, so that on a two-core machine the
sender's side, not the receiver, is what is measured.

    python bench/push_sink.py PORT
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast

import uvloop

CREATED = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"


class Accept(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)  # uvloop's is no asyncio.Transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            start = head.find(b"content-length:")
            length = int(head[start + 15 :].split(b"\r\n", 1)[0]) if start >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            assert self.transport is not None
            self.transport.write(CREATED)


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Accept, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
