"""Turning rule decisions into wire actions: templates rendered server-side with autoescaping."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

import jinja2

from server import protocol as p
from server.engine import Decision
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
            return p.PopupAction(id=rule.id, trigger=rule.spec.trigger, expires=expires, html=html)
        return p.OfferAction(
            id=rule.id,
            trigger=rule.spec.trigger,
            expires=min(expires, code.expires),
            html=html,
            code=code.code,
            offer_expires=code.expires,
        )
