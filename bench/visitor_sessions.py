"""Realistic visitor sessions driven through Storetag's real event path, as the tag would send them.

One session: a landing page (a third with a campaign's UTM tags, some from a search engine), then about a
dozen page and product views across categories, one to three cart adds with a look at the cart, and the
actions the server answers handled as the tag handles them: `now` actions are shown at once and closed on
the next page; an armed exit-intent action fires, is shown and closed when the visitor leaves. One batch per
page, with unique batch ids, a desktop or mobile User-Agent and an Accept-Language.
"""

from __future__ import annotations

import random
import secrets
from typing import Any

import msgspec
from batches import (
    CATEGORIES,
    SHOP,
    Event,
    action_event,
    cart_add,
    category_view,
    page_view,
    product_view,
)

from server import protocol as p
from server.ingest import Runtime

USER_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36",
)
LANGUAGES = ("en-US,en;q=0.9", "de-DE,de;q=0.9,en;q=0.5", "fr-FR,fr;q=0.8", "en-GB,en;q=0.9")
CAMPAIGN = "?utm_source=newsletter&utm_medium=email&utm_campaign=winter-sale"


class Session:
    def __init__(self, runtime: Runtime, site: str, origin: str, rng: random.Random) -> None:
        self.runtime, self.site, self.origin, self.rng = runtime, site, origin, rng
        self.visitor, self.session = secrets.token_hex(16), secrets.token_hex(16)
        self.user_agent, self.language = rng.choice(USER_AGENTS), rng.choice(LANGUAGES)
        self.ts = 0
        self.showing: list[str] = []  # actions on screen, closed on the next page
        self.armed: dict[str, str] = {}  # action id → trigger, waiting for its trigger
        self.answered = self.shown = self.batches = 0

    async def send(self, events: list[Event]) -> None:
        body: dict[str, Any] = {"site": self.site, "visitor": self.visitor, "session": self.session}
        body |= {"batch": secrets.token_hex(16), "events": events}
        batch = msgspec.convert(body, p.EventBatch)
        answer = await self.runtime.ingest(batch, self.origin, self.user_agent, self.language)
        self.batches += 1
        for withdrawn in answer.withdraw:
            if withdrawn == "*":
                self.armed.clear()
            self.armed.pop(withdrawn, None)
        for action in answer.actions:
            self.answered += 1
            self.armed[action.id] = action.trigger

    async def page(self, events: list[Event]) -> None:
        """A page load: close what was showing, send the page's events, show what fires `now`."""
        url = events[0]["url"]
        closing = [action_event("action_closed", a, self.ts, url) for a in self.showing]
        self.showing = []
        await self.send(closing + events)
        now = [a for a, trigger in self.armed.items() if trigger == "now"]
        if now:
            self.ts += 200
            await self.send([action_event("action_shown", a, self.ts, url) for a in now])
            for a in now:
                del self.armed[a]
            self.showing, self.shown = now, self.shown + len(now)

    def tick(self) -> int:
        self.ts += self.rng.randint(5_000, 40_000)
        return self.ts

    async def run(self, now_ms: int) -> None:
        rng, self.ts = self.rng, now_ms
        ref = rng.choice(("", "https://www.google.com/", "https://duckduckgo.com/"))
        landing = page_view(rng, self.ts, ref, "home", "/" + (CAMPAIGN if rng.random() < 0.33 else ""))
        await self.page([landing])
        cart_adds, views = rng.randint(1, 3), rng.randint(10, 14)
        favourites = [rng.randint(1, 500) for _ in range(4)]
        for n in range(views):
            ts, prev = self.tick(), SHOP + "/"
            if n % 4 == 0:
                cat = rng.randint(1, CATEGORIES)
                await self.page(
                    [page_view(rng, ts, prev, "category", f"/c/{cat}"), category_view(rng, ts, prev, cat)]
                )
                continue
            item = rng.choice(favourites) if rng.random() < 0.4 else rng.randint(1, 500)
            await self.page(
                [page_view(rng, ts, prev, "product", f"/p/{item}"), product_view(rng, ts, prev, item)]
            )
            if cart_adds and rng.random() < 0.3:
                cart_adds -= 1
                await self.send([cart_add(rng, self.tick(), prev, item, 1)])
                await self.page([page_view(rng, self.tick(), prev, "cart", "/cart")])
        await self.leave()

    async def leave(self) -> None:
        """The pointer leaves the window: an armed exit-intent action shows, and the visitor closes it."""
        url = SHOP + "/cart"
        fired = [a for a, trigger in self.armed.items() if trigger == "exit_intent"]
        events = [action_event("action_closed", a, self.tick(), url) for a in self.showing]
        events += [action_event("action_shown", a, self.tick(), url) for a in fired]
        events += [action_event("action_closed", a, self.tick(), url) for a in fired]
        self.shown += len(fired)
        if events:
            await self.send(events)
