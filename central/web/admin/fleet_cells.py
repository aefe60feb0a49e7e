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
from central.updates import words
from central.updates.book import Shown
from central.updates.rings import is_final_failure

SYMBOLS = {"ok": "✓", "warn": "!", "bad": "✗", "none": "–"}  # so a light reads without colour too


@lru_cache(maxsize=8192)
def _cell(locale: str, key: str, level: str, text: str, values: tuple[tuple[str, object], ...],
          name: str | None) -> Markup:
    shown = gettext_for(locale)(text, **dict(values))
    # The device's name on hovering: a fleet has few models, so the cells stay few.
    title = f' title="{escape(name)}"' if name else ""
    return Markup(f'<td class="light light-{level}" data-light="{key}" data-level="{level}"{title}>'
                  f'<span class="light-dot" aria-hidden="true">{SYMBOLS[level]}</span> {escape(shown)}</td>')


def light_cell(locale: str, light: Light) -> Markup:
    return _cell(locale, light.key, light.level, light.text, tuple(sorted(light.values.items())), light.name)


def light_cells(locale: str, lights: list[Light]) -> Markup:
    return Markup("").join(light_cell(locale, light) for light in lights)




def update_text(locale: str, shown: Shown) -> str:
    """A kiosk's update state in words, e.g. "downloading (45 %)" or "rolled back: the camera failed its self-test"."""
    return words.state(gettext_for(locale), shown.state, pct=shown.progress_pct, fault=shown.fault,
                       check=shown.check)


@lru_cache(maxsize=4096)
def _update_cell(locale: str, state: str, pct: int | None, fault: str | None, check: str | None) -> Markup:
    # Levels as the lights have them, so the column reads the same way: a failure tried again is amber.
    level = ("ok" if state == "running" else "bad" if is_final_failure(state, fault)
             else "warn" if state == "failed" else "none")
    shown = update_text(locale, Shown(state, "", 0.0, pct, fault, check))
    return Markup(f'<td class="update light-{level}" data-update="{state}">{escape(shown)}</td>')


def update_cell(locale: str, shown: Shown | None) -> Markup:
    """The fleet table's "Update" cell (the version is in its own column; the time on the detail page)."""
    if shown is None:
        return Markup('<td class="update" data-update="">–</td>')
    return _update_cell(locale, shown.state, shown.progress_pct, shown.fault, shown.check)
