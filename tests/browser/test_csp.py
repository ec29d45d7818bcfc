"""The tag, its pop-ups, offers and recommendation slots under a strict Content-Security-Policy with a
nonce: no inline script or style is allowed, and nothing the tag does is refused."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.conftest import AT_ONCE, PageProblems
from tests.browser.page_server import PageServer
from tests.conftest import SITES_FILE, LiveServer, free_port

RULES = Path(__file__).parent / "hardening_rules"
DIALOG = "[data-storetag=popup] [role=dialog]"
CSP = (
    "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src {api}; "
    "base-uri 'none'; form-action 'none'"
)
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Strict CSP</title>
<script nonce="{nonce}">
window.storetag=window.storetag||function(){{(storetag.q=storetag.q||[]).push(arguments)}};
</script>
<script nonce="{nonce}">
["{item}-a", "{item}-b", "{item}-page"].forEach((id) => storetag("track", "product_view", {{id, name: id}}));
</script>
<script nonce="{nonce}" async src="{api}/t/shop.js"></script>
<script>window.unnonced = 1;</script>
</head><body><h1>A shop with a strict CSP</h1><p>Its only scripts carry the nonce.</p>
<div data-storetag-slot="csp-recs"></div></body></html>"""
# The page's own un-nonced script: the one violation there must be, proving the policy is enforced.
CONTROL = "script-src-elem inline"
WATCH_VIOLATIONS = """window.violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  violations.push(e.violatedDirective + " " + e.blockedURI);
}, true);"""


@pytest.fixture(scope="module")
def csp_site(redis_url: str) -> Iterator[str]:
    """A page origin answering every path with a fresh nonce; the API with the CSP test rules."""
    page_port, api_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"

    def render(path: str) -> tuple[str, dict[str, str]]:
        nonce = secrets.token_urlsafe(16)
        policy = CSP.format(nonce=nonce, api=api_url)
        page = PAGE.format(nonce=nonce, api=api_url, item=f"csp-{secrets.token_hex(4)}")
        return page, {"Content-Security-Policy": policy}

    pages = PageServer(page_port, render)
    env = {
        "REDIS_URL": redis_url,
        "STORETAG_SITES": str(SITES_FILE),
        "STORETAG_RULES": str(RULES),
        "STORETAG_ALLOWED_ORIGINS": pages.origin,
        **AT_ONCE,
    }
    api = LiveServer(["serve", "--port", str(api_port)], env, api_port)
    try:
        yield pages.origin
    finally:
        api.stop()
        pages.close()


@pytest.fixture
async def watched(page: Page) -> Page:
    await page.add_init_script(WATCH_VIOLATIONS)
    return page


async def assert_only_the_control_was_refused(page: Page, problems: PageProblems) -> None:
    assert await page.evaluate("window.unnonced") is None
    assert await page.evaluate("violations") == [CONTROL]
    refused = [error for error in problems.console_errors if "Content Security Policy" in error]
    assert len(refused) == 1 and "inline script" in refused[0]
    assert problems.page_errors == []


async def test_a_popup_shows_styled_under_a_strict_csp_with_no_violation(
    csp_site: str, watched: Page, problems: PageProblems
) -> None:
    page = watched
    await page.goto(f"{csp_site}/csp/popup")
    dialog = page.locator(DIALOG)
    await expect(dialog).to_contain_text("Welcome under a strict CSP")
    backdrop = page.locator("[data-storetag=popup] .st-backdrop")
    assert await backdrop.evaluate("(el) => getComputedStyle(el).position") == "fixed", "its styles apply"
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    await assert_only_the_control_was_refused(page, problems)


async def test_an_offer_counts_down_and_copies_its_code_under_a_strict_csp_with_no_violation(
    csp_site: str, watched: Page, context: BrowserContext, problems: PageProblems
) -> None:
    page = watched
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=csp_site)
    await page.goto(f"{csp_site}/csp/offer")
    dialog = page.locator(DIALOG)
    await expect(dialog.locator("code")).to_have_text(re.compile(r"^CSP-[A-Z0-9]+$"))
    await expect(dialog.locator("[data-storetag-countdown]")).to_have_text(re.compile(r"^1:59:\d\d$"))
    await dialog.locator("[data-storetag-copy]").click()
    await expect(dialog.locator("[data-storetag-copy]")).to_have_text("Copied!")
    await assert_only_the_control_was_refused(page, problems)


async def test_a_recommendation_slot_draws_styled_under_a_strict_csp_with_no_violation(
    csp_site: str, watched: Page, problems: PageProblems
) -> None:
    page = watched
    await page.goto(f"{csp_site}/csp/recs")
    slot = page.locator("[data-storetag-slot=csp-recs]")
    await expect(slot.locator(".st-rec-title")).to_have_count(2)
    await expect(slot.locator("h2")).to_have_text("Viewed under a strict CSP")
    grid = await slot.locator(".st-recs-list").evaluate("(el) => getComputedStyle(el).display")
    assert grid == "grid", "its styles apply"
    await assert_only_the_control_was_refused(page, problems)
