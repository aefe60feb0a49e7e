"""A stand-in for picamera2's hardware ``H264Encoder``, for tests and the demo.

It encodes :class:`TestPatternTrack` pictures with libx264 (through PyAV) on a
thread of its own and calls ``output.outputframe(bytes, keyframe, timestamp_us)``
exactly as picamera2's V4L2 encoder does: one Annex B access unit per call,
timestamps in microseconds from the first frame, SPS/PPS repeated in front of
every IDR.  So the Pi 4 passthrough path (``EncodedVideoTrack``) runs on any
laptop, with pictures that ``read_clock`` can check after a real network hop.

The test pattern compresses to a tenth of the bitrate, where the camera's picture of a person in a
room takes all of it. ``fill=True`` pads each access unit with a filler NAL unit (which decoders
skip) to the bitrate's share of a frame, so that what is sent, and what sending it costs, follows
the bitrate as with the real camera: also when :meth:`set_bitrate` changes it during a call.
"""
from __future__ import annotations

import asyncio
import fractions
import logging
import threading

import av

from appliance.hardware.errors import DeviceStateError, DeviceUsageError
from appliance.hardware.fake.camera import VIDEO_TIME_BASE, TestPatternTrack

log = logging.getLogger(__name__)

FILLER_NAL = b"\x00\x00\x00\x01\x0c"  # NAL unit type 12 (filler data), which decoders skip


class FakeH264Encoder:
    """Mirrors picamera2's ``H264Encoder(bitrate, repeat, iperiod, framerate, profile)``.

    Set ``output`` (anything with ``outputframe``), ``width`` and ``height``,
    then :meth:`start`; :meth:`stop` joins the thread.  Unsupported options fail
    loudly instead of being silently ignored.
    """

    def __init__(self, bitrate: int | None = None, repeat: bool = True, iperiod: int | None = 30,
                 framerate: float | None = 30, profile: str | None = "baseline", *, fill: bool = False) -> None:
        if not repeat:
            # Without in-band SPS/PPS a receiver joining late (or after loss)
            # could never start decoding: there is no keyframe request path.
            raise DeviceUsageError("FakeH264Encoder only supports repeat=True")
        if profile not in (None, "baseline", "main", "high"):
            raise DeviceUsageError(f"profile {profile!r} not supported")
        self.bitrate = bitrate or 1_000_000
        self.repeat = repeat
        self.iperiod = iperiod or 30
        self.framerate = framerate or 30
        self.profile = profile or "baseline"
        self.fill = fill
        self._ceiling = self.bitrate  # the rate control's maximum (VBV): the bitrate when the codec opened
        self._bitrate_wanted: int | None = None  # set from the event loop, read on the encoder's thread
        self.output = None
        self.width, self.height = 640, 480
        self.frames_encoded = 0
        self.keyframes_requested = 0
        self._keyframe_wanted = False  # set from the event loop, read on the encoder's thread
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def _codec(self) -> av.CodecContext:
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height, codec.pix_fmt = self.width, self.height, "yuv420p"
        codec.time_base = VIDEO_TIME_BASE
        codec.framerate = fractions.Fraction(self.framerate).limit_denominator(1001)
        codec.bit_rate = self._ceiling = self.bitrate
        codec.gop_size = self.iperiod
        codec.max_b_frames = 0
        # The options picamera2 sets on the V4L2 encoder, in x264's words:
        # baseline (no B-frames, what WebRTC peers expect), headers before
        # every IDR, a fixed IDR period and no lookahead delay.
        # A rate-controlled stream (VBV), as the Pi's encoder sends: only with it does x264 take a new
        # bitrate while it runs (set_bitrate), and never above the one it was started with.
        codec.options = {
            "preset": "veryfast", "tune": "zerolatency", "profile": self.profile,
            "maxrate": str(self._ceiling), "bufsize": str(self._ceiling),
            "x264-params": f"repeat-headers=1:keyint={self.iperiod}:min-keyint={self.iperiod}"
                           ":scenecut=0:bframes=0",
        }
        return codec

    def start(self) -> None:
        if self.output is None:
            raise DeviceStateError("set encoder.output before start()")
        if self._thread is not None:
            raise DeviceStateError("encoder already started")
        self._stopping.clear()
        if hasattr(self.output, "start"):
            self.output.start()
        self._thread = threading.Thread(target=self._run, name="fake-h264-encoder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.output is not None and hasattr(self.output, "stop"):
            self.output.stop()

    def request_keyframe(self) -> None:
        """The next picture becomes an IDR, as the Pi's encoder does on V4L2's FORCE_KEY_FRAME."""
        self.keyframes_requested += 1
        self._keyframe_wanted = True

    def set_bitrate(self, bitrate: int) -> None:
        """Aim at ``bitrate`` (bit/s) from the next picture on, as the Pi's encoder does on V4L2's
        VIDEO_BITRATE; at most the bitrate it was started with."""
        self._bitrate_wanted = max(1, min(int(bitrate), self._ceiling))

    def _padded(self, data: bytes) -> bytes:
        room = self.bitrate // 8 // max(1, round(self.framerate)) - len(data) - len(FILLER_NAL) - 1
        return data + FILLER_NAL + b"\xff" * room + b"\x80" if room > 0 else data

    def _run(self) -> None:
        # The pattern track paces itself with asyncio.sleep; a private loop on
        # this thread keeps the caller's loop free, like a real camera thread.
        try:
            asyncio.run(self._encode_loop())
        except Exception as exc:
            self.error = exc
            log.exception("fake H.264 encoder failed")

    async def _encode_loop(self) -> None:
        source = TestPatternTrack(self.width, self.height, fps=self.framerate)
        codec = self._codec()
        try:
            while not self._stopping.is_set():
                frame = await source.recv()
                wanted = self._bitrate_wanted
                if wanted is not None and wanted != codec.bit_rate:
                    self.bitrate = codec.bit_rate = wanted  # libavcodec hands it to x264 (reconfig) at this frame
                if self._keyframe_wanted:
                    self._keyframe_wanted = False
                    frame.pict_type = av.video.frame.PictureType.I  # closed GOP: x264 makes it an IDR
                for packet in codec.encode(frame):
                    self.frames_encoded += 1
                    # picamera2 reports microseconds since the first frame.
                    timestamp_us = packet.pts * 1_000_000 // 90000
                    data = self._padded(bytes(packet)) if self.fill else bytes(packet)
                    self.output.outputframe(data, packet.is_keyframe, timestamp_us)
        finally:
            source.stop()
