"""Pre-encoded H.264 video as an aiortc track (the Pi 4 camera path).

The Pi 4's hardware encoder hands us H.264 access units on picamera2's encoder
thread.  aiortc packetises an ``av.Packet`` returned by ``recv()`` without
re-encoding it (``RTCRtpSender._next_encoded_frame`` -> ``H264Encoder.pack``),
which saves the Pi 4 a software encode of every frame.

The price: aiortc cannot ask a packet source for a keyframe, so PLI/FIR from
the receiver go unanswered unless the kiosk forwards them (appliance/call/fanout.py
calls :meth:`EncodedVideoTrack.request_keyframe`, which the camera wires to its
encoder).  The encoder must therefore repeat SPS/PPS and send an IDR
periodically by itself as well (picamera2: ``repeat=True, iperiod=fps``), and
the peer must negotiate H.264 (:func:`h264_codecs`).
"""
from __future__ import annotations

import asyncio
import collections
import fractions
import logging
import threading
import time
from collections.abc import Callable

import av
from aiortc import RTCRtpCodecCapability, RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from appliance.hardware.errors import CodecUnavailable

log = logging.getLogger(__name__)

VIDEO_CLOCK_RATE = 90000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)
# Packetization mode 1 (FU-A/STAP-A) is what aiortc sends; 42e01f is
# constrained baseline level 3.1, which every browser decodes in hardware or software.
H264_PROFILE_LEVEL_ID = "42e01f"
QUEUE_FRAMES = 8  # ~270 ms at 30 fps: more would only add latency


def h264_codecs() -> list[RTCRtpCodecCapability]:
    """Codec preferences for a transceiver sending :class:`EncodedVideoTrack`.

    Pass to ``transceiver.setCodecPreferences()`` before the offer is made.
    """
    codecs = [c for c in RTCRtpSender.getCapabilities("video").codecs
              if c.mimeType.lower() == "video/h264"
              and c.parameters.get("packetization-mode") == "1"
              and c.parameters.get("profile-level-id") == H264_PROFILE_LEVEL_ID]
    if not codecs:
        raise CodecUnavailable("this aiortc offers no H.264 packetization-mode=1 profile 42e01f; install the "
                               "aiortc version in pyproject.toml")
    return codecs


class EncodedVideoTrack(MediaStreamTrack):
    """Video track whose ``recv()`` returns H.264 ``av.Packet``s (Annex B, 1/90000).

    Fed from another thread through :meth:`put` (or a :class:`TrackOutput`).
    ``put`` never blocks the camera: when the consumer falls behind, frames
    are dropped, and because every P-frame refers to the one before, after a
    drop everything up to the next keyframe is dropped too (a decoder could
    not use it).  A queued keyframe is never dropped to make room for a
    P-frame; a new keyframe replaces a full queue.
    """

    kind = "video"

    def __init__(self, *, max_queue: int = QUEUE_FRAMES,
                 on_stop: Callable[[], None] | None = None) -> None:
        super().__init__()
        self._loop = asyncio.get_running_loop()
        self._max = max_queue
        self._on_stop = on_stop
        # Set by the camera: asks its encoder for an IDR soon (a peer joined the call, or lost the picture).
        self.on_keyframe_request: Callable[[], None] | None = None
        # Set by the camera: sets its encoder's bitrate (bit/s) while it runs (the call's upload budget),
        # and the bitrate it is configured for, the most a budget gives it.
        self.on_bitrate_request: Callable[[int], None] | None = None
        self.max_bitrate: int | None = None
        self.bitrate: int | None = None  # what the encoder was last set to
        self._lock = threading.Lock()  # guards the deque and flags, shared with the camera thread
        self._frames: collections.deque[tuple[bytes, bool, int]] = collections.deque()
        self._wanted = asyncio.Event()
        self._signalled = False  # at most one wake-up in flight, so a stalled loop cannot pile them up
        self._need_keyframe = True  # a decoder can only start at a keyframe
        self._first_us: int | None = None
        self._started = time.monotonic()
        self.frames_in = 0
        self.dropped = 0

    # -- camera thread ------------------------------------------------------

    def put(self, data: bytes, keyframe: bool, timestamp_us: int | None = None) -> None:
        """Queue one access unit; called from any thread, never blocks."""
        if self.readyState != "live":
            return
        if timestamp_us is None:
            timestamp_us = int((time.monotonic() - self._started) * 1_000_000)
        with self._lock:
            self.frames_in += 1
            if keyframe:
                if len(self._frames) >= self._max:
                    self.dropped += len(self._frames)
                    self._frames.clear()
                self._need_keyframe = False
            elif self._need_keyframe or len(self._frames) >= self._max:
                self.dropped += 1
                self._need_keyframe = True
                return
            self._frames.append((bytes(data), keyframe, timestamp_us))
            wake = not self._signalled
            self._signalled = True
        if wake:
            try:
                self._loop.call_soon_threadsafe(self._wanted.set)
            except RuntimeError:  # loop closed while the camera was still running
                pass

    # -- asyncio loop -------------------------------------------------------

    def request_keyframe(self) -> bool:
        """Ask the camera's encoder for an IDR soon; False if this camera cannot be asked."""
        if self.on_keyframe_request is None or self.readyState != "live":
            return False
        try:
            self.on_keyframe_request()
        except Exception as exc:  # noqa: BLE001 - the periodic IDR still comes; the call must not suffer
            log.warning("the camera's encoder refused a key frame request: %s", exc)
            return False
        return True

    def request_bitrate(self, bitrate: int) -> bool:
        """Have the camera's encoder aim at ``bitrate`` (bit/s) from now on; False if it cannot be asked."""
        if self.on_bitrate_request is None or self.readyState != "live":
            return False
        try:
            self.on_bitrate_request(bitrate)
            self.bitrate = bitrate
        except Exception as exc:  # noqa: BLE001 - the picture goes on at the old rate; the call must not suffer
            log.warning("the camera's encoder refused the bitrate %d bit/s: %s", bitrate, exc)
            return False
        return True

    async def recv(self) -> av.Packet:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            with self._lock:
                item = self._frames.popleft() if self._frames else None
                if item is None:
                    self._signalled = False
                    self._wanted.clear()
            if item is not None:
                break
            await self._wanted.wait()
        data, keyframe, timestamp_us = item
        if self._first_us is None:
            self._first_us = timestamp_us
        packet = av.Packet(data)
        # Integer arithmetic: float microseconds would drift over a long call.
        packet.pts = (timestamp_us - self._first_us) * VIDEO_CLOCK_RATE // 1_000_000
        packet.time_base = VIDEO_TIME_BASE
        packet.is_keyframe = keyframe
        return packet

    def stop(self) -> None:
        if self.readyState == "live":
            super().stop()
            self._wanted.set()  # wake a pending recv() so it raises MediaStreamError
            if self._on_stop is not None:
                self._on_stop()


class TrackOutput:
    """An object shaped like picamera2's ``Output`` that feeds an :class:`EncodedVideoTrack`.

    picamera2's encoders call ``start()``, ``stop()`` and ``outputframe()`` on
    their outputs; ``hardware.pi.camera`` wraps this in a real ``Output``
    subclass, the fake encoder uses it as is.
    """

    def __init__(self, track: EncodedVideoTrack) -> None:
        self.track = track
        self.recording = False
        # Read by picamera2's encoders: no pacing to emulate, no audio stream to add.
        self.needs_pacing = False
        self.needs_add_stream = False

    def start(self) -> None:
        self.recording = True

    def stop(self) -> None:
        self.recording = False

    def outputframe(self, frame: bytes, keyframe: bool = True, timestamp: int | None = None,
                    packet=None, audio: bool = False) -> None:
        if audio or frame is None:
            return  # the microphone has its own path; picamera2's audio muxing is unused
        self.track.put(frame, keyframe, timestamp)
