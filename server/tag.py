"""Serving the tag: the core with the site's public config inlined, the lazy renderer modules, and the
service worker that shops import into the one-line worker file at their root.

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
RENDERERS = {"popup": "popup", "offer": "popup", "recs": "recs", "push_prompt": "push"}
# The tag URL is pasted into themes and cannot carry a version, so it is revalidated often.
CORE_CACHE = "public, max-age=300, stale-while-revalidate=86400"
# Modules are addressed by content hash.
MODULE_CACHE = "public, max-age=31536000, immutable"
# Browsers check a worker's imported scripts for updates; a short cache lets a new one reach them soon.
WORKER_CACHE = "public, max-age=300"


class TagConfig(msgspec.Struct):
    site: str
    api: str
    modules: dict[str, str]
    # Web push: the site's VAPID public key ("" means no push) and the path of its one-line worker file.
    vapid_public_key: str = ""
    push_worker: str = ""


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
        self.worker = Asset.of(minify("sw"), WORKER_CACHE)
        self._cores: dict[tuple[str, str, str, str], Asset] = {}

    def module_url(self, api: str, name: str) -> str:
        return f"{api}/w/{name}.js?v={self.modules[name].etag.strip(chr(34))}"

    def core_for(self, site: str, api: str, vapid_public_key: str = "", push_worker: str = "") -> Asset:
        key = (site, api, vapid_public_key, push_worker)
        cached = self._cores.get(key)
        if cached is None:
            modules = {kind: self.module_url(api, module) for kind, module in RENDERERS.items()}
            tag_config = TagConfig(site, api, modules, vapid_public_key, push_worker)
            config = msgspec.json.encode(tag_config).decode()
            cached = Asset.of(self.core.replace(CONFIG_TOKEN, config), CORE_CACHE)
            if len(self._cores) >= 1024:  # the API origin may come from the Host header: stay bounded
                self._cores.clear()
            self._cores[key] = cached
        return cached
