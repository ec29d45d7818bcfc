"""Bytes of the tag as browsers get it: the core with a site's config inlined, and each lazy module.

Source, minified (as server/tag.py's TagAssets serves it), gzip -9 (what the server sends) and brotli -11
(what a CDN or proxy in front could send). Sizes are deterministic: no noise, one measurement.

    .venv/bin/python bench/tag_size.py
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, fields

import brotli
from report import Goal, Section, markdown_table

from server.tag import WIDGET_DIR, TagAssets

CORE_GZIP_GOAL = 4 * 1024
MODULES_GZIP_GOAL = 15 * 1024
# A realistic config: a site key and an API origin on its own host, as a real install has.
EXAMPLE_SITE, EXAMPLE_API = "shop-example", "https://tags.example-shop.com"


@dataclass(frozen=True)
class Sizes:
    name: str
    source: int
    minified: int
    gzip: int
    brotli: int

    @classmethod
    def of(cls, name: str, source: bytes, minified: bytes) -> Sizes:
        packed = gzip.compress(minified, 9, mtime=0)
        return cls(name, len(source), len(minified), len(packed), len(brotli.compress(minified, quality=11)))

    def cells(self) -> list[str]:
        return [self.name, *(f"{n:,}" for n in (self.source, self.minified, self.gzip, self.brotli))]


def measure() -> tuple[Sizes, list[Sizes]]:
    assets = TagAssets()
    core = assets.core_for(EXAMPLE_SITE, EXAMPLE_API).body
    core_sizes = Sizes.of("core (config inlined)", (WIDGET_DIR / "core.js").read_bytes(), core)
    modules = [
        Sizes.of(f"lazy: {name}", (WIDGET_DIR / f"{name}.js").read_bytes(), asset.body)
        for name, asset in sorted(assets.modules.items())
    ]
    return core_sizes, modules


def run() -> Section:
    core, modules = measure()
    numbers = [f.name for f in fields(Sizes) if f.name != "name"]
    total = Sizes("lazy modules together", *(sum(getattr(m, n) for m in modules) for n in numbers))
    rows = [core.cells(), *(m.cells() for m in modules), total.cells()]
    table = markdown_table(["asset", "source B", "minified B", "gzip B", "brotli B"], rows)
    return Section(
        title="Tag size",
        command=".venv/bin/python bench/tag_size.py",
        tables=[table],
        goals=[
            Goal("core ≤ 4 KB gzip", f"{core.gzip:,} B", core.gzip <= CORE_GZIP_GOAL),
            Goal(
                "all lazy modules together ≤ 15 KB gzip", f"{total.gzip:,} B", total.gzip <= MODULES_GZIP_GOAL
            ),
        ],
        notes=[
            f"The core as `GET /t/{{site}}.js` serves it, with the config of site `{EXAMPLE_SITE}` and API "
            f"`{EXAMPLE_API}` inlined; modules as `GET /w/{{name}}.js` serves them (`TagAssets().modules`).",
            "minified: rjsmin, as the server does at start-up. gzip: level 9, what the server sends. brotli: "
            "quality 11, what a CDN in front could send (the server itself sends gzip only). "
            "1 KB = 1,024 B. Deterministic: `make test` checks the same budgets (tests/test_tag_size.py).",
        ],
    )


if __name__ == "__main__":
    print(run().markdown())
