"""The clerk's voice reaches the kiosk's speaker sooner: a reorder buffer for received audio that waits
only where packets are missing.

aiortc's RTCRtpReceiver keeps received audio packets in a reorder buffer (its ``JitterBuffer``) and hands
a packet to the decoder only once four later ones have arrived: 80 ms at 20 ms per packet, in every call.
It does not smooth arrival jitter (each packet still leaves when a later one arrives); that is the speaker's
playback buffer's job. Every audio codec of a call (Opus, G.711, G.722) puts a whole frame in each packet,
so :class:`AudioReorderBuffer` hands a packet out as soon as it is the next in order. Only a gap makes it
wait: a packet that overtook its neighbour waits for it, a lost one is given up once three later ones are
in. And packets never pile up: aiortc hands out one packet per packet added, so after its buffer gave up a
lost packet, the 15 that came in meanwhile (300 ms) stay as a delay for the rest of the call; this one keeps
at most one packet waiting and drops older ones (a gap the listener barely notices, where a lasting delay
spoils every turn of the conversation).

A kiosk whose CPU cannot keep up (a Pi 4 at full load, an emulated test guest) would also let packets pile
up before aiortc's decoder thread, and the voice would play ever later. :class:`DecodeBacklog` keeps at
most ``DECODE_BACKLOG`` packets waiting there and skips the oldest: the voice stays at most that far behind,
with gaps where the kiosk could not keep up (the journal says so once, and the count at the call's end).
The decoded frames then wait for the speaker in the track's queue; :func:`bound_playback` keeps at most
``PLAY_BACKLOG`` of them there, for an event loop too busy to play them in time.

aiortc has no setting for either, so :func:`use_for_audio` replaces the receiver's private buffer and
decoder queue before the first packet, as appliance/kiosk/video_feed.py diverts its decoder queue; if that ever stops fitting the
installed aiortc, the receiver keeps aiortc's own buffer and the log says so.
"""
from __future__ import annotations

import asyncio
import logging
import queue

from aiortc.jitterbuffer import JitterBuffer, JitterFrame

log = logging.getLogger(__name__)

CAPACITY = 4        # a lost packet is given up once the 4th after it arrives (aiortc: 16)
RECEIVER_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"  # where aiortc 1.x keeps it
DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"       # and the queue its decoder thread reads
DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"
DECODE_BACKLOG = 5  # packets (100 ms of voice) waiting to be decoded at most
PLAY_BACKLOG = 10   # decoded frames (200 ms) waiting for the speaker at most
# Packets left waiting after the one handed out: normally none. After a swap one waits (aiortc hands out one
# packet per packet added), for the rest of the call, as aiortc's own buffer always does; more are dropped.
MAX_WAITING = 1


class AudioReorderBuffer(JitterBuffer):
    """aiortc's JitterBuffer for packets that each hold a whole frame: no wait in order, no lasting backlog."""

    def __init__(self) -> None:
        super().__init__(capacity=CAPACITY)
        self.dropped = 0  # packets dropped as stale, for tests and the log

    def add(self, packet):
        pli, frame = super().add(packet)  # aiortc's: placing, duplicates, giving up a lost packet
        waiting = self._waiting()
        if waiting > MAX_WAITING:
            self.remove(waiting - MAX_WAITING)
            self.dropped += waiting - MAX_WAITING
        return pli, frame

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        """The oldest packet kept, if it is the next in order (aiortc's waits for a later one)."""
        packet = self._packets[self._origin % self.capacity]
        if packet is None:
            return None
        self.remove(1)
        return JitterFrame(data=packet._data, timestamp=packet.timestamp)

    def _waiting(self) -> int:
        """Packets in order from the oldest kept one, up to the first gap."""
        count = 0
        while count < self.capacity and self._packets[(self._origin + count) % self.capacity] is not None:
            count += 1
        return count


class DecodeBacklog(queue.Queue):
    """The queue before aiortc's decoder thread, for a voice: when the thread falls behind, the oldest
    packets waiting are skipped, so the voice is never more than ``limit`` packets late. The stop signal
    (None) always goes in; a tap on ``put`` (appliance/call/receiver_tap.py) still replaces it all."""

    def __init__(self, limit: int = DECODE_BACKLOG) -> None:
        super().__init__()
        self.limit = limit
        self.skipped = 0  # packets skipped as too late, for the log and tests

    def _put(self, item) -> None:  # under the queue's lock, from aiortc's packet handling on the event loop
        if item is not None:
            self.skipped = _make_room(self.queue, self.limit, self.skipped,
                                      "call: the clerk's voice is decoded more slowly than it comes; the oldest "
                                      "packets waiting are skipped, so it stays at most %d ms behind")
        self.queue.append(item)


class PlayBacklog(asyncio.Queue):
    """A received voice's decoded frames waiting for the speaker (aiortc's track queue): when the event loop
    cannot play them in time, the oldest are skipped, so the voice never waits more than ``limit`` frames.
    The end of the track (None) always goes in."""

    def __init__(self, limit: int = PLAY_BACKLOG) -> None:
        super().__init__()
        self.limit = limit
        self.skipped = 0

    def _put(self, item) -> None:
        if item is not None:
            self.skipped = _make_room(self._queue, self.limit, self.skipped,
                                      "call: the kiosk plays the clerk's voice more slowly than it comes; the "
                                      "oldest decoded frames are skipped, so it stays at most %d ms behind")
        super()._put(item)


def _make_room(queue, limit: int, skipped: int, warning: str) -> int:
    """Drops the oldest items of ``queue`` (a deque of 20 ms packets or frames) until one more fits within
    ``limit``, but never the end-of-track signal (None) at its head. Warns once per call, on the first item
    dropped (``warning`` takes the bound in ms); returns the new count of items dropped."""
    while len(queue) >= limit and queue[0] is not None:
        queue.popleft()
        skipped += 1
        if skipped == 1:
            log.warning(warning, limit * 20)
    return skipped


def bound_playback(track) -> bool:
    """Give a received audio track (aiortc's RemoteStreamTrack, from the peer connection's "track" event,
    before media flows) a :class:`PlayBacklog`. False if it is not one, or already receiving."""
    if getattr(track, "kind", None) != "audio" or type(getattr(track, "_queue", None)) is not asyncio.Queue:
        return False
    if not track._queue.empty():
        return False
    track._queue = PlayBacklog()
    return True


def decode_skipped(receiver) -> int:
    """Packets or frames of ``receiver``'s voice skipped because the kiosk fell behind decoding or playing it
    (0 without :class:`DecodeBacklog` and :class:`PlayBacklog`)."""
    backlog = getattr(receiver, DECODER_QUEUE, None)
    played = getattr(getattr(receiver, "track", None), "_queue", None)
    return ((backlog.skipped if isinstance(backlog, DecodeBacklog) else 0)
            + (played.skipped if isinstance(played, PlayBacklog) else 0))


def use_for_audio(receiver) -> bool:
    """Give an audio ``RTCRtpReceiver`` an :class:`AudioReorderBuffer`; call before media flows.

    False (and aiortc's buffer kept) if the installed aiortc keeps its buffer elsewhere."""
    current = getattr(receiver, RECEIVER_ATTRIBUTE, None)
    if not isinstance(current, JitterBuffer) or current._origin is not None:
        log.warning("aiortc's audio receiver is built differently than expected; the clerk's voice keeps "
                    "its 80 ms reorder delay")
        return False
    setattr(receiver, RECEIVER_ATTRIBUTE, AudioReorderBuffer())
    decoder_queue = getattr(receiver, DECODER_QUEUE, None)
    if type(decoder_queue) is queue.Queue and decoder_queue.empty() and getattr(receiver, DECODER_THREAD, 1) is None:
        setattr(receiver, DECODER_QUEUE, DecodeBacklog())
    else:
        log.warning("aiortc's audio receiver is built differently than expected; a kiosk that falls behind "
                    "may play the clerk's voice ever later")
    return True
