"""One WebSocket peer, with its own ordered outbound queue.

The hub only ever calls :meth:`Link.send`, which never waits; so every hub
operation runs without awaiting and is atomic on the event loop. A writer task
drains the queue. A peer that stops reading is cut off instead of letting its
backlog grow without bound.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

MAX_BACKLOG = 2000  # frames; a console that falls this far behind reloads its snapshot anyway


class Link:
    def __init__(self, send_str: Callable[[str], Awaitable[None]], close: Callable[[], Awaitable[None]]):
        self._send_str = send_str
        self._close = close
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(MAX_BACKLOG)
        self._writer = asyncio.get_running_loop().create_task(self._drain())
        self.closed = False

    def send(self, frame: str) -> None:
        if self.closed:
            return
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning("peer stopped reading; closing its connection")
            self.closed = True
            self._writer.cancel()
            asyncio.get_running_loop().create_task(self._close())

    def close(self) -> None:
        """Send what is queued, then close the socket (e.g. replaced by a newer connection)."""
        if not self.closed:
            self.closed = True
            try:
                self._queue.put_nowait(None)
            except asyncio.QueueFull:
                self._writer.cancel()
                asyncio.get_running_loop().create_task(self._close())

    async def _drain(self) -> None:
        try:
            while (frame := await self._queue.get()) is not None:
                await self._send_str(frame)
        except (ConnectionError, RuntimeError):
            pass
        self.closed = True
        await self._close()

    async def wait_closed(self) -> None:
        """Close (if not yet) and wait, briefly, until queued frames are out."""
        self.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._writer), 2)
        except (TimeoutError, asyncio.CancelledError):
            self._writer.cancel()
