"""Keeps this central's rollout in step with the database, where another central process (behind the
same load balancer) or ``python -m central rollout`` may have changed it.

Every CHECK_EVERY_S the live rollout is read (one small query); if it differs from the one in memory,
this process adopts it and tells its own kiosks: the new bundle offered, the old one withdrawn.
"""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web

log = logging.getLogger(__name__)

CHECK_EVERY_S = 10.0


async def watch(app: web.Application) -> None:
    """Runs for the life of the process (started and cancelled by central.app)."""
    while True:
        await asyncio.sleep(CHECK_EVERY_S)
        try:
            await resync(app)
        except Exception:  # the database may be away for a moment; try again next round
            log.exception("checking the rollout for changes failed")


async def resync(app: web.Application) -> bool:
    """Adopt the stored live rollout if it differs from this process's; True if it did."""
    hub = app["hub"]
    book = hub.updates
    async with app["rollout_lock"]:
        if book.rollout_dirty:
            return False  # a pause of this process is not written yet: the database is behind, not ahead
        stored = await app["db"].updates.live_rollout()
        mine = book.rollout
        if stored == mine or book.rollout_dirty:  # a kiosk's rollback may have paused it while the database answered
            return False
        same = mine is not None and stored is not None and stored.id == mine.id
        if mine is not None and (not same or stored.state != "active"):
            hub.withdraw_update()  # its bundle is replaced, or the rollout stopped or paused
        book.set_rollout(stored)
        if stored is not None and stored.state == "active":
            # A ring opened (only the kiosks it adds), or a rollout started or resumed (every one it reaches).
            hub.offer_updates(only_new=same and mine.state == "active")
        log.info("rollout changed elsewhere: now %s", f"{stored.id} {stored.state} {stored.ring}" if stored else "none")
        return True
