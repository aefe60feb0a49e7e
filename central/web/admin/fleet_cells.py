"""The fleet table's light cells as HTML, made once per distinct light and language.

A fleet of 2,000 kiosks has 14,000 light cells but only a few hundred distinct ones (most lights
say "works"); rendering each through the template engine made the page take over a second, during
which central answers nobody. So the cells are built here, cached, and the template only joins them.
"""
from __future__ import annotations

from functools import lru_cache

from markupsafe import Markup, escape

from central.fleet.lights import Light
from central.i18n import gettext_for

SYMBOLS = {"ok": "✓", "warn": "!", "bad": "✗", "none": "–"}  # so a light reads without colour too


@lru_cache(maxsize=8192)
def _cell(locale: str, key: str, level: str, text: str, values: tuple[tuple[str, object], ...]) -> Markup:
    shown = gettext_for(locale)(text, **dict(values))
    return Markup(f'<td class="light light-{level}" data-light="{key}" data-level="{level}">'
                  f'<span class="light-dot" aria-hidden="true">{SYMBOLS[level]}</span> {escape(shown)}</td>')


def light_cell(locale: str, light: Light) -> Markup:
    return _cell(locale, light.key, light.level, light.text, tuple(sorted(light.values.items())))


def light_cells(locale: str, lights: list[Light]) -> Markup:
    return Markup("").join(light_cell(locale, light) for light in lights)
