"""The clerk's voice reaches the kiosk's speaker sooner: a smaller reorder buffer for received audio.

aiortc's RTCRtpReceiver keeps received audio packets in a reorder buffer (its ``JitterBuffer``) and hands
a packet to the decoder only once four later ones have arrived: 80 ms at 20 ms per packet, in every call.
It does not smooth arrival jitter (each packet still leaves when a later one arrives); that is the speaker's
playback buffer's job. :class:`AudioReorderBuffer` waits for one later packet (a packet swapped with its
neighbour is still put back in order), gives a lost packet up once three later ones are in, and never lets
packets pile up: aiortc's buffer, after a loss, keeps handing out one old packet per new one, so the 15
packets that came in while it waited (300 ms) stay as a delay for the rest of the call; this one keeps at
most one packet more than usual and drops older ones (a gap the listener barely notices, where a lasting
delay spoils every turn of the conversation).

aiortc has no setting for it, so :func:`use_for_audio` replaces the receiver's private buffer before the
first packet, as appliance/kiosk/video_feed.py diverts its decoder queue; if that ever stops fitting the
installed aiortc, the receiver keeps aiortc's own buffer and the log says so.
"""
from __future__ import annotations

import logging

from aiortc.jitterbuffer import JitterBuffer

log = logging.getLogger(__name__)

FRAMES_AHEAD = 1    # a packet leaves once the next one is in (aiortc: 4)
CAPACITY = 4        # a lost packet is given up once the 4th after it arrives (aiortc: 16)
RECEIVER_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"  # where aiortc 1.x keeps it
# Packets kept after the one handed out: normally one (the next). aiortc hands out one packet per packet
# added, so after a swap or a loss two wait, for the rest of the call; more than that are dropped.
MAX_WAITING = 2


class AudioReorderBuffer(JitterBuffer):
    """aiortc's JitterBuffer, waiting for one packet instead of four, and without a lasting backlog."""

    def __init__(self) -> None:
        super().__init__(capacity=CAPACITY, prefetch=FRAMES_AHEAD)
        self.dropped = 0  # packets dropped as stale, for tests and the log

    def add(self, packet):
        pli, frame = super().add(packet)
        waiting = self._waiting()
        if waiting > MAX_WAITING:
            self.remove(waiting - MAX_WAITING)
            self.dropped += waiting - MAX_WAITING
        return pli, frame

    def _waiting(self) -> int:
        """Packets in order from the oldest kept one, up to the first gap."""
        count = 0
        while count < self.capacity and self._packets[(self._origin + count) % self.capacity] is not None:
            count += 1
        return count


def use_for_audio(receiver) -> bool:
    """Give an audio ``RTCRtpReceiver`` an :class:`AudioReorderBuffer`; call before media flows.

    False (and aiortc's buffer kept) if the installed aiortc keeps its buffer elsewhere."""
    current = getattr(receiver, RECEIVER_ATTRIBUTE, None)
    if not isinstance(current, JitterBuffer) or current._origin is not None:
        log.warning("aiortc's audio receiver is built differently than expected; the clerk's voice keeps "
                    "its 80 ms reorder delay")
        return False
    setattr(receiver, RECEIVER_ATTRIBUTE, AudioReorderBuffer())
    return True
