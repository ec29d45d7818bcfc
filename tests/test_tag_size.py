"""The tag's size budget: the core every page loads stays small; lazy modules load only when needed."""

from __future__ import annotations

import gzip

from server.tag import RENDERERS, TagAssets

CORE_GZIP_BUDGET = 4 * 1024
LAZY_MODULES_GZIP_BUDGET = 15 * 1024


def test_the_core_tag_stays_within_4_kb_gzipped() -> None:
    core = TagAssets().core_for("a-site-key", "https://tags.example.com")
    assert len(core.gzipped) <= CORE_GZIP_BUDGET, f"core is {len(core.gzipped)} bytes gzipped"


def test_all_lazy_modules_together_stay_within_15_kb_gzipped() -> None:
    modules = TagAssets().modules
    assert set(modules) == set(RENDERERS.values())
    total = sum(len(gzip.compress(asset.body, 9)) for asset in modules.values())
    assert total <= LAZY_MODULES_GZIP_BUDGET, f"lazy modules are {total} bytes gzipped"
