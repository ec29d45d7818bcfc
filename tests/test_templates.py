"""Rule templates stay safe under a shop's strict Content-Security-Policy: pop-ups are drawn from them into
the shop's page, where inline scripts, event-handler attributes and inline styles would be refused."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from server.engine import BUILTIN_RULES_DIR

TEMPLATES = sorted((BUILTIN_RULES_DIR / "templates").glob("*.html"))


class InlineCode(HTMLParser):
    """Collects what a strict CSP refuses: <script>, <style>, on* and style attributes, javascript: URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.found.append(f"{tag}[{name}]")
            if (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"{tag}[{name}=javascript:]")


def test_there_are_templates_to_check() -> None:
    assert len(TEMPLATES) >= 4


@pytest.mark.parametrize("template", TEMPLATES, ids=[path.name for path in TEMPLATES])
def test_a_rule_template_has_no_inline_script_handler_or_style(template: Path) -> None:
    parser = InlineCode()
    parser.feed(template.read_text())
    assert parser.found == []


def test_the_check_finds_inline_code() -> None:
    parser = InlineCode()
    parser.feed('<p style="color:red" onclick="x()"><a href=" JavaScript:x()">a</a><script>x()</script></p>')
    assert parser.found == ["p[style]", "p[onclick]", "a[href=javascript:]", "<script>"]
