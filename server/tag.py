"""Serving the tag: the core with the site's public config inlined, and the lazy renderer modules.

Everything is minified and compressed once at start-up; a request only picks bytes and checks the ETag.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import msgspec
import rjsmin

WIDGET_DIR = Path(__file__).resolve().parent.parent / "widget"
CONFIG_TOKEN = "__STORETAG_CONFIG__"
# Action kind → the lazy module (widget/NAME.js) that draws it.
RENDERERS = {"popup": "popup", "offer": "popup", "recs": "recs"}
# The tag URL is pasted into themes and cannot carry a version, so it is revalidated often.
CORE_CACHE = "public, max-age=300, stale-while-revalidate=86400"
# Modules are addressed by content hash.
MODULE_CACHE = "public, max-age=31536000, immutable"


class TagConfig(msgspec.Struct):
    site: str
    api: str
    modules: dict[str, str]


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str
    cache_control: str

    @classmethod
    def of(cls, text: str, cache_control: str) -> Asset:
        body = text.encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        return cls(body, gzip.compress(body, 9, mtime=0), etag, cache_control)


def minify(name: str) -> str:
    return str(rjsmin.jsmin((WIDGET_DIR / f"{name}.js").read_text()))


class TagAssets:
    def __init__(self) -> None:
        self.core = minify("core")
        if self.core.count(CONFIG_TOKEN) != 1:
            raise SystemExit(f"storetag: widget/core.js must contain {CONFIG_TOKEN} exactly once")
        self.modules = {name: Asset.of(minify(name), MODULE_CACHE) for name in set(RENDERERS.values())}
        self._cores: dict[tuple[str, str], Asset] = {}

    def module_url(self, api: str, name: str) -> str:
        return f"{api}/w/{name}.js?v={self.modules[name].etag.strip(chr(34))}"

    def core_for(self, site: str, api: str) -> Asset:
        cached = self._cores.get((site, api))
        if cached is None:
            modules = {kind: self.module_url(api, module) for kind, module in RENDERERS.items()}
            config = msgspec.json.encode(TagConfig(site, api, modules)).decode()
            cached = Asset.of(self.core.replace(CONFIG_TOKEN, config), CORE_CACHE)
            if len(self._cores) >= 1024:  # the API origin may come from the Host header: stay bounded
                self._cores.clear()
            self._cores[(site, api)] = cached
        return cached
