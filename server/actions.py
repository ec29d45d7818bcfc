"""Turning rule decisions into wire actions: templates rendered server-side with autoescaping."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import jinja2

from server import protocol as p
from server.engine import Decision
from server.sites import Site

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

    def render(self, decisions: Sequence[Decision], site: Site, now_ms: int) -> list[p.Action]:
        actions: list[p.Action] = []
        for decision in decisions:
            spec, rule = decision.action, decision.rule
            try:
                html = self.templates.get_template(spec.template).render(site=site, **spec.values)
            except Exception:
                self.failures[rule.id] += 1
                log.exception("rule %s: template %s failed; skipped", rule.id, spec.template)
                continue
            expires = now_ms + rule.spec.expires_s * 1000
            actions.append(p.PopupAction(id=rule.id, trigger=rule.spec.trigger, expires=expires, html=html))
        return actions
