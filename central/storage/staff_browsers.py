"""Each clerk's browser as of their last call: whether it takes H.264, for city IT.

A Pi 4 kiosk passes its camera's H.264 through untouched; a clerk whose browser lacks H.264
(Firefox ESR without the OpenH264 plugin) makes it encode VP8 in software instead, which costs
the kiosk CPU. Central reads this from the clerk's answer (central/live/clerk_video.py) and keeps
only the latest per account: the staff page and /metrics show who lacks it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from central.storage import schema as t

_b = t.staff_browsers


@dataclass(frozen=True)
class ClerkVideo:
    """What a clerk's browser answered to a kiosk's video offer."""
    browser: str   # "Firefox 128", "Chrome 131", or "unknown browser"
    h264: bool     # it listed H.264
    video: str     # the codec it answered first, lower case ("h264", "vp8"), or "none" (it refused the video)


@dataclass(frozen=True)
class StaffBrowser(ClerkVideo):
    at: float = 0.0  # unix seconds of that call


class StaffBrowsers:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    async def record(self, staff_id: int, seen: ClerkVideo, at: float | None = None) -> None:
        at = time.time() if at is None else at
        values = {"browser": seen.browser[:40], "h264": seen.h264, "video": seen.video[:16], "at": at}
        stmt = self._insert(_b).values(staff_id=staff_id, **values)
        stmt = stmt.on_conflict_do_update(index_elements=[_b.c.staff_id], set_=values)
        async with self.engine.begin() as c:
            await c.execute(stmt)

    async def all(self) -> dict[int, StaffBrowser]:
        """Every account's latest, by staff id (accounts that never took a call have none)."""
        async with self.engine.connect() as c:
            rows = (await c.execute(sa.select(_b))).all()
        return {r.staff_id: StaffBrowser(r.browser, r.h264, r.video, r.at) for r in rows}
