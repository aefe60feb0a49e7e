"""One WebSocket peer, with its own ordered outbound queue.

The hub only ever calls :meth:`Link.send`, which never waits; so every hub
operation runs without awaiting and is atomic on the event loop. A frame goes
straight to the socket when nothing is queued before it and the socket takes it
at once (``write_now``); otherwise it is queued and a writer task drains the
queue, waiting for the socket as long as it must. A peer that stops reading is
cut off instead of letting its backlog grow without bound.

Writing at once matters at scale: a visit sends some forty frames to consoles,
and a turn of the writer task per frame cost central a third of each frame's
CPU (docs/benchmarks.md, "Central at scale").
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

# What central holds for one peer that has not read it yet, in bytes of queued frames.
# Counted in bytes, not frames: a frame may be 64 KiB (an SDP), so a frame count lets
# one slow console pin tens of megabytes. A console's normal traffic is a few KiB per
# event and a snapshot of well under 100 KiB, so 1 MiB is many seconds of backlog;
# beyond it the peer is cut off and, if it is alive, reconnects and reloads its
# snapshot. With a few hundred consoles and kiosks that bounds the worst case to a few
# hundred MiB instead of "unbounded".
MAX_BACKLOG_BYTES = 1024 * 1024


def frame_bytes(frame: str) -> int:
    # Frames are almost always ASCII JSON; len() is exact then and cheap.
    return len(frame) if frame.isascii() else len(frame.encode("utf-8", "surrogatepass"))


class Link:
    """A peer's outbound side. ``abort`` drops the connection at once, without a closing handshake."""

    def __init__(self, send_str: Callable[[str], Awaitable[None]], close: Callable[[], Awaitable[None]],
                 abort: Callable[[], None] | None = None, *, ping: Callable[[], Awaitable[None]] | None = None,
                 write_now: Callable[[str], bool] | None = None, max_backlog_bytes: int = MAX_BACKLOG_BYTES):
        """``write_now(frame)`` writes the frame if the socket takes it without waiting and says whether it
        did; without it every frame goes through the writer task."""
        self._send_str = send_str
        self._write_now = write_now
        self._sending = False  # the writer task is inside send_str: a frame written now could overtake its frame
        self._close = close
        self._abort = abort
        self._ping = ping
        self._pong = asyncio.Event()
        self.max_backlog_bytes = max_backlog_bytes
        self._queue: deque[str | None] = deque()
        self._ready = asyncio.Event()
        self.queued_bytes = 0
        self.closed = False
        self.cut_off = False  # True once the peer was dropped for not reading
        self._writer = asyncio.get_running_loop().create_task(self._drain())

    def send(self, frame: str) -> None:
        if self.closed:
            return
        if not self._queue and not self._sending and self._write_now is not None and self._write_now(frame):
            return
        size = frame_bytes(frame)
        if self.queued_bytes + size > self.max_backlog_bytes:
            self._cut_off()
            return
        self._queue.append(frame)
        self.queued_bytes += size
        self._ready.set()

    def close(self) -> None:
        """Send what is queued, then close the socket (e.g. replaced by a newer connection)."""
        if not self.closed:
            self.closed = True
            self._queue.append(None)
            self._ready.set()

    def abort(self) -> None:
        """Drop the connection now, queued frames and all (the leader found the relayed peer not reading)."""
        if not self.closed:
            self._cut_off()

    def _cut_off(self) -> None:
        # The peer does not read: a closing handshake would queue behind the very
        # bytes it does not read, so the connection is dropped outright.
        log.warning("peer stopped reading (more than %d bytes queued); dropping its connection",
                    self.max_backlog_bytes)
        self.closed = self.cut_off = True
        self._queue.clear()
        self.queued_bytes = 0
        self._writer.cancel()
        if self._abort is not None:
            self._abort()
        else:
            asyncio.get_running_loop().create_task(self._close())

    def heard_pong(self) -> None:
        self._pong.set()

    async def answers_ping(self, within_s: float) -> bool:
        """Whether the peer answers a WebSocket ping within ``within_s``: it is alive and reading."""
        if self._ping is None or self.closed:
            return False
        self._pong.clear()
        try:
            async with asyncio.timeout(within_s):
                await self._ping()
                await self._pong.wait()
        except (TimeoutError, ConnectionError, RuntimeError):
            return False
        return True

    async def _drain(self) -> None:
        try:
            while True:
                while not self._queue:
                    self._ready.clear()
                    await self._ready.wait()
                frame = self._queue.popleft()
                if frame is None:
                    break
                self.queued_bytes -= frame_bytes(frame)
                self._sending = True
                await self._send_str(frame)
                self._sending = False
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
