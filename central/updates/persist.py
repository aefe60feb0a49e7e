"""Writes the update book's changes (kiosks' reports, a rollout paused by one) in batches.

During a rollout thousands of kiosks report their download every 5 % or 30 s; one write per
report would keep the database busy for nothing. A change is written within ``batch_s``, and
once more when central stops, so a restart keeps every report but the last second's (and the
kiosk repeats its state on its next change anyway). An admin's own actions are written at once,
by central/updates/control.py, not here.
"""
from __future__ import annotations

import asyncio
import logging

from central.storage.updates import UpdateStore
from central.updates.book import UpdateBook

log = logging.getLogger(__name__)

BATCH_S = 1.0


class UpdateWriter:
    def __init__(self, book: UpdateBook, store: UpdateStore, *, batch_s: float = BATCH_S):
        self.book, self.store, self.batch_s = book, store, batch_s
        self._changed = asyncio.Event()
        book.on_change = self._changed.set

    async def run(self) -> None:
        """Until cancelled; a failed write is retried with the next batch."""
        while True:
            await self._changed.wait()
            await asyncio.sleep(self.batch_s)
            self._changed.clear()
            await self.flush()

    async def flush(self) -> None:
        rollout, rows = self.book.take_dirty()
        try:
            if rollout is not None:
                await self.store.save(rollout)
            await self.store.save_statuses(rows)
        except Exception:
            log.exception("could not store the kiosks' update reports; retrying with the next batch")
            self.book.dirty.update((r.kiosk_id, r.bundle_id) for r in rows)
            self.book.rollout_dirty = self.book.rollout_dirty or rollout is not None
            self._changed.set()
