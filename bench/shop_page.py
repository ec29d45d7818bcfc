"""A realistic shop page for the tag benchmark: the demo shop's product page as static HTML, with and without
the tag, served by a plain static file server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
from local_servers import HOST, BenchError, free_port, running, wait_until
from targets import answers

from server.demo.shop import create_shop_app

# The lines of the page that install the tag: its page-type meta, the queue stub, the async script and the
# page's own track call. The page without the tag has none of them.
TAG_LINES = re.compile(
    r'^.*(storetag:page|window\.storetag=|/t/[\w-]+\.js|storetag\("track", "product_view").*\n', re.M
)
# The demo's form handler calls the tag only when a form is submitted; it stays in both pages.
FORM_HANDLER_CALL = 'storetag("track", type, props)'


async def product_page(tag_src: str) -> tuple[str, str]:
    """The demo shop's first product page with the tag loading from `tag_src`, and without the tag."""
    app = create_shop_app(tag_src, "Bench Shop")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop") as client:
        home = (await client.get("/")).text
        link = re.search(r'href="(/p/[^"]+)"', home)
        if not link:
            raise BenchError("the demo shop's home page links no product")
        tagged = (await client.get(link[1])).text
    plain = TAG_LINES.sub("", tagged)
    if "storetag(" in plain.replace(FORM_HANDLER_CALL, "") or tag_src not in tagged:
        raise BenchError("could not take the tag out of the demo product page: its snippet changed")
    return tagged, plain


@contextlib.contextmanager
def static_server(directory: Path, log: Path) -> Iterator[str]:
    """`python -m http.server` on a free port serving `directory` (which must hold plain.html)."""
    port = free_port()
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", HOST, "--directory", str(directory)]
    base = f"http://{HOST}:{port}"
    with running(cmd, log) as proc:
        wait_until(lambda: answers(f"{base}/plain.html"), proc, "static page server", log)
        yield base
