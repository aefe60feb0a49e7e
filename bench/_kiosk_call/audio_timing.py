"""Where the kiosk's audio time goes, measured inside the kiosk process (for the mouth-to-ear budget).

* microphone late: how long after a 20 ms frame was full the microphone track handed it out (the event
  loop's wake-up, under the machine's load);
* sent late: how long after the frame was full its RTP packet went to the socket (the above, plus aiortc's
  Opus encoding in its thread pool and the loop's other work, e.g. a video key frame's packets);
* receive hold: how long a received audio packet of the clerk waited in the reorder buffer
  (appliance/call/audio_buffer.py) before it went to the decoder.

Each is summarised (p50, p95, max in ms) per window and then reset. It wraps the objects of one call
(instance attributes only), so nothing of it outlives the call.
"""
from __future__ import annotations

import time

from bench._common import percentile

FRAME_S = 960 / 48000


class AudioTiming:
    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {"mic_late_ms": [], "sent_late_ms": [], "receive_hold_ms": []}

    def attach(self, microphone, sender, receiver) -> None:
        """``microphone``: the call's SyntheticMicrophoneTrack; ``sender``/``receiver``: the audio ones."""
        samples = self.samples

        def full_at(pts: int) -> float:  # when the frame whose first sample is ``pts`` was full
            return microphone._start + pts / 48000 + FRAME_S

        recv = microphone.recv

        async def timed_recv():
            frame = await recv()
            samples["mic_late_ms"].append((time.monotonic() - full_at(frame.pts)) * 1000)
            return frame
        microphone.recv = timed_recv

        next_frame = sender._next_encoded_frame

        async def timed_next(codec):
            encoded = await next_frame(codec)
            if encoded is not None:  # sent right after this returns, on the same loop turn
                samples["sent_late_ms"].append((time.monotonic() - full_at(encoded.timestamp)) * 1000)
            return encoded
        sender._next_encoded_frame = timed_next

        from appliance.call.audio_buffer import RECEIVER_ATTRIBUTE
        buffer = getattr(receiver, RECEIVER_ATTRIBUTE, None)
        if buffer is not None:
            arrived: dict[int, float] = {}
            add = buffer.add

            def timed_add(packet):
                now = time.monotonic()
                arrived.setdefault(packet.timestamp, now)
                pli, frame = add(packet)
                if frame is not None and frame.timestamp in arrived:
                    samples["receive_hold_ms"].append((now - arrived.pop(frame.timestamp)) * 1000)
                    for old in [t for t in arrived if (t - frame.timestamp) % 2**32 > 2**31]:
                        del arrived[old]  # given up or dropped
                return pli, frame
            buffer.add = timed_add

    def summary(self) -> dict:
        """p50/p95/max of each since the last summary, then start afresh."""
        out = {}
        for key, values in self.samples.items():
            values.sort()
            out[key] = {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
                        "max": percentile(values, 100)}
            values.clear()
        return out
