"""The guest's page: an interpreter or colleague opens the clerk's one-time link ``/guest#<secret>``.

The page itself is the same for everyone and says nothing about any call; the secret in the fragment
never reaches this handler. Its script (static/guest/) checks camera and microphone and talks to
``/ws/guest`` (central/live/guest_side.py).
"""
from __future__ import annotations

from aiohttp import web

from central.citizen.pages import render_citizen


async def guest_page(request: web.Request) -> web.Response:
    return render_citizen(request, "citizen/guest.html")


def routes() -> list[web.RouteDef]:
    return [web.get("/guest", guest_page)]
