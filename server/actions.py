"""Turning rule decisions into wire actions: templates rendered server-side with autoescaping."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

import jinja2

from server import protocol as p
from server.catalog import Product, http_url
from server.engine import Decision
from server.prices import format_price
from server.rules import Push, PushPrompt, Recs
from server.sites import Site
from server.visitor import IssuedCode

log = logging.getLogger("storetag.actions")


def template_environment(directories: Iterable[Path]) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(directory / "templates") for directory in directories]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,
    )


class Renderer:
    def __init__(self, templates: jinja2.Environment) -> None:
        self.templates = templates
        self.failures: Counter[str] = Counter()

    def render(
        self, decision: Decision, site: Site, now_ms: int, code: IssuedCode | None = None
    ) -> p.Action | None:
        """The wire action, or None when its template fails (logged and counted against the rule)."""
        spec, rule = decision.action, decision.rule
        if isinstance(spec, Push):  # pushes go to the schedule, never to the tag
            return None
        values = dict(spec.values)
        if code is not None:
            apply_url = site.discount_url.format(code=quote(code.code)) if site.discount_url else ""
            values.update(code=code.code, offer_expires=code.expires, apply_url=apply_url)
        try:
            html = self.templates.get_template(spec.template).render(site=site, **values)
        except Exception:
            self.failures[rule.id] += 1
            log.exception("rule %s: template %s failed; skipped", rule.id, spec.template)
            return None
        expires = now_ms + rule.spec.expires_s * 1000
        if code is None:
            kind = p.PushPromptAction if isinstance(spec, PushPrompt) else p.PopupAction
            return kind(id=rule.id, trigger=rule.spec.trigger, expires=expires, html=html)
        return p.OfferAction(
            id=rule.id,
            trigger=rule.spec.trigger,
            expires=min(expires, code.expires),
            html=html,
            code=code.code,
            offer_expires=code.expires,
        )

    def render_recs(
        self, decision: Decision, site: Site, now_ms: int, lists: Mapping[str, Sequence[Product]]
    ) -> p.RecsAction | None:
        """A slot's list from `lists` (slot → products), or None when it has nothing to show or its
        template fails."""
        spec, rule = decision.action, decision.rule
        if not isinstance(spec, Recs) or not lists.get(spec.slot):
            return None
        items = [rec_item(product, site) for product in lists[spec.slot]]
        try:
            template = self.templates.get_template(spec.template)
            html = template.render(site=site, items=items, slot=spec.slot, **spec.values)
        except Exception:
            self.failures[rule.id] += 1
            log.exception("rule %s: template %s failed; skipped", rule.id, spec.template)
            return None
        expires = now_ms + rule.spec.expires_s * 1000
        return p.RecsAction(rule.id, rule.spec.trigger, expires, spec.slot, spec.strategy.name, html, items)


def rec_item(product: Product, site: Site) -> p.RecItem:
    """A product as the wire and the templates show it: links and images only when http(s)."""
    currency = product.currency or site.currency
    price, on_sale = product.current_price, product.sale_price is not None and product.price is not None
    return p.RecItem(
        id=product.id,
        title=product.title,
        url=http_url(product.url),
        image_url=http_url(product.image_url),
        price=product.price,
        sale_price=product.sale_price,
        currency=currency,
        price_text=format_price(price, currency, site.locale) if price is not None else "",
        was_price_text=format_price(product.price, currency, site.locale)
        if on_sale and product.price
        else "",
        category=product.category,
        brand=product.brand,
        attributes=product.attributes,
    )
