"""A citizen's browser at home, as a WebSocket client of ``/ws/visit`` (with central's own Origin)."""
from __future__ import annotations

import aiohttp

from tests.central.conftest import Peer


async def home(central, *, origin: str | None = None, headers: dict | None = None) -> Peer:
    """A connected browser at home, its ``welcome`` read (kept as ``peer.welcome``)."""
    session = aiohttp.ClientSession()
    central.sessions.append(session)
    ws = await session.ws_connect(central.url.replace("http", "ws") + "/ws/visit",
                                  headers={"Origin": origin or central.url} | (headers or {}))
    peer = Peer(ws)
    peer.welcome = await peer.recv("welcome")  # type: ignore[attr-defined]
    return peer


async def queued_at_home(central, department: str = "buergerbuero", language: str = "ar") -> tuple[Peer, dict]:
    peer = await home(central)
    await peer.send(type="visit.request", department=department, language=language)
    return peer, await peer.recv("visit.queued")
