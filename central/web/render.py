"""Jinja2 rendering with the request's language, CSRF token and user in every template."""
from __future__ import annotations

from pathlib import Path

import jinja2
from aiohttp import web

from central.i18n import LANGUAGE_NAMES, available_locales, gettext_for

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                         undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render(request: web.Request, template: str, status: int = 200, **context: object) -> web.Response:
    locale = request["locale"]
    html = env.get_template(template).render(
        _=gettext_for(locale), locale=locale, locales=[(code, LANGUAGE_NAMES.get(code, code))
                                                       for code in available_locales()],
        staff=request.get("staff"), csrf_token=request.get("csrf_token", ""), path=request.path, **context)
    return web.Response(text=html, content_type="text/html", status=status)
