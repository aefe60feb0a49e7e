"""Writes the fleet registry's persisted part in batches: soon after kiosks connect or disconnect,
otherwise at most every ``every_s`` seconds, and once more when central stops.

A central serving 2,000 kiosks gets about 70 health reports a second; writing each would keep the
database busy for nothing, and so would rewriting every online kiosk's last-seen time each minute
(a 2,000-row write holds up the event loop). Only what a restart must keep is written
(central/storage/fleet.py), plus one heartbeat row: "this central was alive then".
"""
from __future__ import annotations

import asyncio
import contextlib
import logging

from central.fleet.registry import FleetRegistry
from central.storage.fleet import FleetStore

log = logging.getLogger(__name__)

EVERY_S = 60.0   # last seen of kiosks that stay online: a crash loses at most this much
BATCH_S = 2.0    # after a connect or disconnect: wait this long so a reconnect storm is one write


class FleetWriter:
    def __init__(self, registry: FleetRegistry, store: FleetStore, *, every_s: float = EVERY_S,
                 batch_s: float = BATCH_S):
        self.registry, self.store = registry, store
        self.every_s, self.batch_s = every_s, batch_s
        self._urgent = asyncio.Event()
        registry.on_urgent = self._urgent.set

    async def run(self) -> None:
        """Until cancelled; a failed write is retried with the next batch."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.every_s):
                    await self._urgent.wait()
                await asyncio.sleep(self.batch_s)
            self._urgent.clear()
            await self.flush()

    async def flush(self) -> None:
        rows = self.registry.take_dirty()
        try:
            await self.store.save(rows, alive_at=self.registry.clock())
        except Exception:
            log.exception("could not store the fleet's last-seen times; retrying with the next batch")
            self.registry.dirty.update(r.kiosk_id for r in rows)
