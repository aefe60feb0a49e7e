"""Keep the open sockets' objects out of Python's full garbage collections.

Every open WebSocket holds about 130 objects the cyclic garbage collector tracks (aiohttp's request,
protocol, reader and writer, the handler's coroutines and tasks, our Link and peer). With 5,500 kiosks
and consoles that is some 700,000 objects, and a full (generation 2) collection looks at every one of
them: about 0.6 s of CPU during which no frame goes out. CPython starts one whenever the objects that
reached the old generation since the last one add up to a quarter of it, which visits at a few hundred
per second do every 10-15 s (docs/benchmarks.md, "Central at scale").

A socket's objects live as long as the socket, so once connections have settled they are handed to
``gc.freeze()``: the collector skips them from then on, and a full collection looks only at what visits
made. Frozen objects that are freed by reference counting (most of a closed socket's) are freed as
usual; only those in reference cycles wait. So when a quarter of the frozen sockets have closed, they
are given back (``gc.unfreeze()``), collected once, and the open ones frozen again: one full collection
per that much churn of connections, not per so many visits.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import time
import weakref
from collections.abc import Collection

log = logging.getLogger(__name__)

REVIEW_S = 10.0  # how often the open sockets are looked at
MIN_NEW = 50     # new sockets since the last freeze that make freezing again worth it
MIN_GONE = 50    # closed frozen sockets below which nothing is given back, however few are frozen


class Together:
    """Several collections of open sockets seen as one: a leader's own WebSockets and the sockets it serves
    for other centrals (central/cluster/remote_peers.py), which live as long and hold as many objects."""

    def __init__(self, *parts: Collection) -> None:
        self._parts = parts

    def __iter__(self):  # noqa: ANN204
        for part in self._parts:
            yield from part

    def __len__(self) -> int:
        return sum(len(part) for part in self._parts)

    def __contains__(self, item: object) -> bool:
        return any(item in part for part in self._parts)


class SocketFreezer:
    """Freezes the collector's view of long-lived sockets; :meth:`review` is called every ``REVIEW_S``."""

    def __init__(self, sockets: Collection) -> None:
        self._sockets = sockets
        self._frozen: weakref.WeakSet = weakref.WeakSet()  # sockets whose objects are frozen
        self._frozen_total = 0  # how many were open when last frozen

    def review(self) -> str | None:
        """Freeze or give back if due; says what it did (for the log), or None."""
        # Closed is "no longer in the open set": a closed socket in a reference cycle is not freed while
        # frozen, so it would stay in the WeakSet.
        still_open = new = 0
        for ws in self._sockets:
            if ws in self._frozen:
                still_open += 1
            else:
                new += 1
        gone = self._frozen_total - still_open
        if gone >= max(MIN_GONE, self._frozen_total // 4):
            frozen_before, started = self._frozen_total, time.perf_counter()
            gc.unfreeze()
            found = gc.collect()
            self._freeze()
            return (f"{gone} of {frozen_before} frozen sockets had closed: collected {found} objects in "
                    f"{time.perf_counter() - started:.2f} s, {self._frozen_total} open sockets frozen")
        if new >= MIN_NEW:
            self._freeze()
            return f"{new} new sockets frozen, {len(self._frozen)} in all"
        return None

    def _freeze(self) -> None:
        # The young generations first, so what the last moments made and dropped in cycles is not kept.
        gc.collect(1)
        gc.freeze()
        self._frozen = weakref.WeakSet(self._sockets)
        self._frozen_total = len(self._sockets)


async def keep_freezing(sockets: Collection, stopping: asyncio.Event, every_s: float = REVIEW_S) -> None:
    """Review ``sockets`` (the app's open WebSockets) every ``every_s`` seconds until central is stopping
    (its sockets all closing then is no churn to collect for: the process is about to end)."""
    freezer = SocketFreezer(sockets)
    while True:
        await asyncio.sleep(every_s)
        if stopping.is_set():
            return
        if (done := freezer.review()) is not None:
            log.info("garbage collector: %s", done)
