"""A media track fed from a capture thread: the thread queues, the event loop receives.

The capture thread calls :meth:`ThreadFedTrack._put` (never blocks; a bounded deque keeps
the newest items, so a slow consumer costs old items rather than latency); ``recv`` on the
event loop awaits :meth:`ThreadFedTrack._get`. Stopping the track wakes a waiting
``recv`` and calls ``on_stop`` once.
"""
from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


class ThreadFedTrack(MediaStreamTrack):
    def __init__(self, maxlen: int, on_stop: Callable[[], object] | None = None) -> None:
        super().__init__()
        self._loop = asyncio.get_running_loop()
        self._on_stop = on_stop
        self._lock = threading.Lock()
        self._items: collections.deque = collections.deque(maxlen=maxlen)
        self._ready = asyncio.Event()

    def _put(self, item) -> bool:
        """Queue ``item``; any thread, never blocks. True if the oldest item was dropped for it."""
        with self._lock:
            full = len(self._items) == self._items.maxlen
            self._items.append(item)
        try:
            self._loop.call_soon_threadsafe(self._ready.set)
        except RuntimeError:  # loop already closed at shutdown
            pass
        return full

    async def _get(self):
        """The oldest queued item, once there is one; MediaStreamError once stopped."""
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            with self._lock:
                item = self._items.popleft() if self._items else None
                if item is None:
                    self._ready.clear()
            if item is not None:
                return item
            await self._ready.wait()

    def stop_from_thread(self) -> None:
        """Stop from a capture thread (its device failed): the event loop ends the track and wakes ``recv``."""
        try:
            self._loop.call_soon_threadsafe(self.stop)
        except RuntimeError:
            pass  # the loop closed at shutdown: nobody is left to tell

    def stop(self) -> None:
        if self.readyState == "live":
            super().stop()
            self._ready.set()
            if self._on_stop is not None:
                self._on_stop()
