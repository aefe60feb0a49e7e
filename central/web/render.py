"""Jinja2 rendering with the request's language, CSRF token and user in every template."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jinja2
from aiohttp import web

from central.i18n import LANGUAGE_NAMES, available_locales, gettext_for

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
SLICE_S = 0.004  # render_in_slices: the longest the event loop waits for a large page before it runs again

env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                         undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _context(request: web.Request, context: dict[str, object]) -> dict[str, object]:
    locale = request["locale"]
    return dict(_=gettext_for(locale), locale=locale, locales=[(code, LANGUAGE_NAMES.get(code, code))
                                                               for code in available_locales()],
                staff=request.get("staff"), csrf_token=request.get("csrf_token", ""), path=request.path, **context)


def render(request: web.Request, template: str, status: int = 200, **context: object) -> web.Response:
    html = env.get_template(template).render(_context(request, context))
    return web.Response(text=html, content_type="text/html", status=status)


async def render_in_slices(request: web.Request, template: str, status: int = 200,
                           **context: object) -> web.Response:
    """:func:`render` for a large page (the fleet's thousands of rows): the template is rendered a
    few milliseconds at a time, and kiosks and consoles are served in between. (A thread would not
    do: it holds the interpreter lock while the loop waits for it after every socket write.)"""
    parts: list[str] = []
    slice_end = time.perf_counter() + SLICE_S
    for n, part in enumerate(env.get_template(template).generate(_context(request, context))):
        parts.append(part)
        if n % 16 == 0 and time.perf_counter() > slice_end:
            await asyncio.sleep(0)
            slice_end = time.perf_counter() + SLICE_S
    return web.Response(text="".join(parts), content_type="text/html", status=status)
