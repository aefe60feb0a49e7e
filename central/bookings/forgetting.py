"""Bookings are deleted once their day is over; only the anonymous counters remain (storage/bookings.py)."""
from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

log = logging.getLogger(__name__)

EVERY_S = 600.0  # a booking lives at most this much past the midnight ending its day


async def keep_forgetting(app: web.Application) -> None:
    """Runs for the life of the process (started and cancelled by central.app); at once, then every EVERY_S.

    Several central processes may do this at once: each deleted row is returned to one of them only.
    """
    while True:
        await forget_now(app)
        await asyncio.sleep(EVERY_S)


async def forget_now(app: web.Application) -> int:
    """One round: delete the bookings of past days; how many went."""
    try:
        return await app["db"].bookings.forget_past(time.time())
    except Exception:  # the database may be away for a moment; try again next round
        log.exception("deleting bookings of past days failed")
        return 0
