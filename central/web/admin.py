"""Admin pages (placeholder until the admin views land)."""
from __future__ import annotations

from aiohttp import web


def routes() -> list[web.RouteDef]:
    return []
