"""Writing throwaway rule modules for tests: one template, one rule per file."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def rule_source(
    *, condition: str = "True", action: str = 'Popup("hello.html", name="x")', **options: Any
) -> str:
    """A rule module; `options` are @rule arguments (on= defaults to page_view)."""
    options.setdefault("on", "page_view")
    arguments = ", ".join(f"{name}={value!r}" for name, value in options.items())
    return (
        "from server.rules import Offer, Popup, Visit, rule, segment\n\n\n"
        f"@rule({arguments})\n"
        "def this_rule(visit: Visit) -> Popup | Offer | None:\n"
        f"    return {action} if {condition} else None\n"
    )


def write_rules(directory: Path, **modules: str) -> Path:
    (directory / "templates").mkdir(parents=True, exist_ok=True)
    (directory / "templates" / "hello.html").write_text("<h2>Hello {{ name }}</h2>")
    (directory / "templates" / "offer.html").write_text("<h2>Code {{ code }}</h2>")
    for name, source in modules.items():
        (directory / f"{name}.py").write_text(source)
    return directory
