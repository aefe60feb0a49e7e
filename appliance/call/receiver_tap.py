"""What a receiver reassembled, taken before aiortc's decoder thread: pictures passed on undecoded
(appliance/kiosk/video_feed.py), guests' voices decoded on the event loop (appliance/call/mix.py).

aiortc's RTCRtpReceiver puts every reassembled frame on a private queue that a decoder thread of its own
reads. aiortc has no public way to receive otherwise, so :func:`tap_encoded_frames` overrides that
queue's ``put``. If that ever stops fitting the installed aiortc, the receiver decodes as aiortc normally
does and the caller falls back (its log says so).
"""
from __future__ import annotations

import logging
import queue

from aiortc.mediastreams import MediaStreamTrack

log = logging.getLogger(__name__)

DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"  # where aiortc 1.x keeps it


def receiver_for(pc, track: MediaStreamTrack):
    """The RTCRtpReceiver of ``track`` in peer connection ``pc`` (None if it has none)."""
    return next((r for r in pc.getReceivers() if r.track is track), None)


def tap_encoded_frames(receiver, sink) -> bool:
    """Send ``receiver``'s encoded frames to ``sink(codec, frame)`` (on the event loop) instead of its decoder.

    Overriding the queue's ``put`` works whenever the thread was started; only the stop signal (None)
    still reaches the thread, so it ends, and ends the track, as before. False if this aiortc is built
    otherwise (or has no way to ask the sender for a key frame, which a picture passed on needs).
    """
    q = getattr(receiver, DECODER_QUEUE, None)
    if not isinstance(q, queue.Queue) or "put" in vars(q) or not callable(getattr(receiver, "_send_rtcp_pli", None)):
        return False
    original = q.put

    def divert(item, *args, **kwargs):
        if item is None:
            return original(item, *args, **kwargs)
        try:
            sink(*item)
        except Exception:  # noqa: BLE001 - runs inside aiortc's packet handling: never break the call
            log.exception("dropped a received %s frame", getattr(receiver.track, "kind", "media"))

    q.put = divert
    return True


def untap_encoded_frames(receiver) -> None:
    """Frames go to aiortc's decoder thread again (a picture's decoder asks for a key frame on its own)."""
    q = getattr(receiver, DECODER_QUEUE, None)
    if q is not None and "put" in vars(q):
        del q.put
