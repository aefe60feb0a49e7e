"""The leader's side of a peer whose WebSocket lives on an edge central: the same interface as
:class:`central.live.link.Link`, so the hub serves it without knowing.

``send`` never waits: the frame is queued on the leader's publisher (central/cluster/bus.py), which sends it
to the edge's channel in order. What this peer has queued there and not yet sent is its backlog, bounded in
bytes as a local link's is; past the bound the peer is cut off (the edge drops its connection). The edge
holds a :class:`Link` of its own to the real socket, with the same bound for a peer that does not read.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from central.cluster import envelope as e
from central.cluster.bus import Publisher
from central.live.link import MAX_BACKLOG_BYTES

log = logging.getLogger(__name__)

# A ping crosses Valkey twice on top of the peer's own answer: this much more time to answer.
RELAY_PING_MARGIN_S = 0.5


class RemoteLink:
    def __init__(self, publisher: Publisher, epoch: int, edge: str, peer: str, *,
                 on_gone: Callable[[], None] = lambda: None, max_backlog_bytes: int = MAX_BACKLOG_BYTES) -> None:
        self._publisher, self._epoch, self._edge, self._peer = publisher, epoch, edge, peer
        self._channel = e.down(edge)
        self._on_gone = on_gone  # the session on the leader ends with the link (remote_peers.py)
        self.max_backlog_bytes = max_backlog_bytes
        self.queued_bytes = 0
        self.closed = False
        self.cut_off = False
        self._pong = asyncio.Event()

    def _envelope(self, op: str, payload: bytes | str = b"") -> bytes:
        return e.pack(self._epoch, self._edge, self._peer, op, payload)

    def _sent(self, size: int) -> None:
        self.queued_bytes -= size

    def send(self, frame: str) -> None:
        if self.closed:
            return
        envelope = self._envelope(e.SEND, frame)
        if self.queued_bytes + len(envelope) > self.max_backlog_bytes or \
                not self._publisher.publish(self._channel, envelope, self._sent):
            self._cut_off()
            return
        self.queued_bytes += len(envelope)

    def close(self, code: int = 1000) -> None:
        """Send what is queued, then close the socket (e.g. replaced by a newer connection)."""
        if not self.closed:
            self.closed = True
            self._publisher.publish(self._channel, self._envelope(e.CLOSE, str(code)), force=True)
            self._on_gone()

    def abort(self) -> None:
        """Drop the connection now (the peer floods the leader): its edge aborts it."""
        if not self.closed:
            self._cut_off()

    def _cut_off(self) -> None:
        log.warning("relayed peer stopped reading (more than %d bytes queued); dropping its connection",
                    self.max_backlog_bytes)
        self.closed = self.cut_off = True
        self._publisher.publish(self._channel, self._envelope(e.ABORT), force=True)
        self._on_gone()

    def ended(self) -> None:
        """The socket ended on the edge (or the edge is gone): nothing more goes out."""
        self.closed = True

    def heard_pong(self) -> None:
        self._pong.set()

    async def answers_ping(self, within_s: float) -> bool:
        """Whether the peer answers a WebSocket ping, asked by its edge, within ``within_s`` (plus the relay)."""
        if self.closed:
            return False
        self._pong.clear()
        self._publisher.publish(self._channel, self._envelope(e.PING, f"{within_s:g}"), force=True)
        try:
            async with asyncio.timeout(within_s + RELAY_PING_MARGIN_S):
                await self._pong.wait()
        except TimeoutError:
            return False
        return True

    async def wait_closed(self) -> None:
        self.close()
