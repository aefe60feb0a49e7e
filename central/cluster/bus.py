"""Envelopes out and in: one ordered publisher and one subscription per central (central/cluster/envelope.py).

Order is what matters: a kiosk's offer must reach the clerk before its candidates. Redis delivers a
channel's messages in the order it executed the PUBLISHes, so :class:`Publisher` sends from one task,
one pipeline at a time: a batch is executed (and answered) before the next starts, whatever connection of
the pool carries it. While one batch is on its way the next one gathers, so a busy central pays one round
trip per batch, not per frame; and the envelopes of a batch for one channel go in one message (a
*bundle*, in their order), so a queue's news for thirty consoles on one edge is one PUBLISH and one read
there, not thirty.

Everything is bounded: the publisher holds at most ``max_bytes`` not yet sent (a full publisher refuses,
and the caller cuts the socket whose frame it was); a subscription hands on what it reads at once.
"""
from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger(__name__)

_LENGTH = struct.Struct("!I")
MAX_PUBLISH_BYTES = 32 * 1024 * 1024  # not yet published, all peers together: Valkey is slow or away
BATCH = 256  # envelopes per pipeline
READ_TIMEOUT_S = 1.0  # a subscription wakes at least this often (to notice it should stop)
SUBSCRIBE_TIMEOUT_S = 3.0


class Publisher:
    """PUBLISH ``(channel, envelope)`` in order. ``on_unheard(channel)`` is called for a channel nobody
    subscribes to any more (its central is gone); ``on_failed(error)`` when Valkey refused or could not be
    reached, after which the batch is lost: the caller ends every relayed socket, so nothing goes on
    half-delivered."""

    def __init__(self, client: aioredis.Redis, *, on_unheard: Callable[[str], None],
                 on_failed: Callable[[Exception], None], max_bytes: int = MAX_PUBLISH_BYTES) -> None:
        self._client = client
        self._on_unheard, self._on_failed = on_unheard, on_failed
        self.max_bytes = max_bytes
        # (channel, envelope, what to call once it is out: a link counting its backlog)
        self._queue: deque[tuple[str, bytes, Callable[[int], None] | None]] = deque()
        self._ready = asyncio.Event()
        self.queued_bytes = 0

    def publish(self, channel: str, envelope: bytes, sent: Callable[[int], None] | None = None,
                *, force: bool = False) -> bool:
        """Queue an envelope; False (and nothing queued) when the publisher is full. ``force`` queues it all the
        same: a close or an abort must get out, or the other side keeps a socket nobody serves."""
        if not force and self.queued_bytes + len(envelope) > self.max_bytes:
            return False
        self._queue.append((channel, envelope, sent))
        self.queued_bytes += len(envelope)
        self._ready.set()
        return True

    def drop(self) -> None:
        """Forget what is queued (every relayed socket is being closed)."""
        for _channel, envelope, sent in self._queue:
            if sent is not None:
                sent(len(envelope))
        self._queue.clear()
        self.queued_bytes = 0

    async def run(self) -> None:
        while True:
            while not self._queue:
                self._ready.clear()
                await self._ready.wait()
            batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
            size = sum(len(envelope) for _channel, envelope, _sent in batch)
            bundles: dict[str, list[bytes]] = {}  # per channel, in order (dicts keep the order of insertion)
            for channel, envelope, _sent in batch:
                bundles.setdefault(channel, []).append(envelope)
            try:
                if len(bundles) == 1:  # most batches: one PUBLISH, without a pipeline's overhead
                    (channel, envelopes), = bundles.items()
                    heard = [await self._client.publish(channel, bundle(envelopes))]
                else:
                    pipe = self._client.pipeline(transaction=False)
                    for channel, envelopes in bundles.items():
                        pipe.publish(channel, bundle(envelopes))
                    heard = await pipe.execute()
            except Exception as exc:  # redis ConnectionError, TimeoutError, a refused command
                heard, failed = [], exc
            else:
                failed = None
            self.queued_bytes -= size
            for _channel, envelope, sent in batch:
                if sent is not None:
                    sent(len(envelope))
            if failed is not None:
                self._on_failed(failed)
                continue
            for channel, listeners in zip(bundles, heard, strict=True):
                if listeners == 0:
                    self._on_unheard(channel)


def bundle(envelopes: list[bytes]) -> bytes:
    """Envelopes for one channel in one message: each behind its length (4 bytes, big-endian)."""
    return b"".join(_LENGTH.pack(len(envelope)) + envelope for envelope in envelopes)


def unbundle(data: bytes) -> list[bytes]:
    """The envelopes of a bundle, in order; what does not parse ends the list (and is logged)."""
    out, at, end = [], 0, len(data)
    while at + _LENGTH.size <= end:
        (size,) = _LENGTH.unpack_from(data, at)
        at += _LENGTH.size
        if at + size > end:
            break
        out.append(data[at:at + size])
        at += size
    if at != end:
        log.warning("ignored %d bytes of a relay message that are no envelope", end - at)
    return out


async def subscribe(client: aioredis.Redis, channel: str, deliver: Callable[[bytes], None],
                    subscribed: Callable[[], None] = lambda: None) -> None:
    """Hand every envelope published on ``channel`` to ``deliver``, in order, until cancelled. Raises what Valkey raises
    (a lost connection): the caller decides what a gap means. ``subscribed`` is called once the
    subscription holds, before any message."""
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(channel)
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):  # Valkey confirms: from now on nothing is missed
            while (message := await pubsub.get_message(timeout=READ_TIMEOUT_S)) is None or \
                    message["type"] != "subscribe":
                pass
        subscribed()
        while True:
            message = await pubsub.get_message(timeout=READ_TIMEOUT_S)
            if message is not None and message["type"] == "message":
                for envelope in unbundle(message["data"]):
                    deliver(envelope)
    finally:
        try:
            await asyncio.shield(pubsub.aclose())
        except Exception:  # the connection may be gone already; nothing to tell
            log.debug("closing a subscription failed", exc_info=True)
