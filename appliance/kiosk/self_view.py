"""The citizen's own picture on the kiosk page, from the call's camera track.

The camera is captured once, for the call. :meth:`SelfViewFeed.attach` wraps the
camera's track in a tee (:class:`SelfViewTrack`): the call sends the tee, and every
frame the call's sender pulls through it is also handed to this feed. No second
capture, no second subscription, no extra queue or task in the call's path, and no
encode anywhere for the page:

- **H.264 packets** (Pi 4 hardware encoder, ``camera.encoded``): passed through
  unchanged, in the stream format of :mod:`appliance.kiosk.stream`, and decoded
  by the page with WebCodecs. By default only the key frames are sent (the encoder
  sends one every second, ``iperiod = fps``): a P-frame needs all frames before it,
  so "fewer frames" means "only key frames". A 1 fps thumbnail shows the citizen
  whether they are in the picture, and spares Chromium a full-rate software decode
  of the 1280x720 stream (on a Pi 4 about as much work as the clerk's picture
  itself). ``h264_key_frames_only=False`` streams every frame.
- **Raw frames** (Pi 5, the fake camera): scaled down in the kiosk (libswscale,
  about 0.1 ms a frame) to ``height`` (180) lines at most ``fps`` (15) frames a
  second, and streamed as raw I420 (320x180: 86 KB a frame). No encode, and
  Chromium only wraps the small frames in a ``VideoFrame``.

The page (static/self-view.js, built on static/clerk-video.js) draws the frames
mirrored into ``<canvas id="self-view-canvas">`` over the placeholder
``<img id="self-view">``; the canvas is transparent until the first frame.

The call owns the camera: stopping the tee (``CallPeer.close``) stops the camera's
track, and the feed lets go of both (its pages get an end record). Nothing of this
keeps the camera running after a call. Nothing is written anywhere: frames live in
bounded in-memory queues and are dropped once sent.

Wiring (appliance.service.main)::

    self_view = SelfViewFeed()
    app = create_app(bridge, self_view=self_view)            # GET /self-view/stream
    # in new_call, on the event loop:
    video = self_view.attach(camera.track(), encoded=camera.encoded)  # send ``video`` in the call
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from appliance.kiosk.stream import ENCODED, RAW, StreamFeed, raw_payload, record

log = logging.getLogger(__name__)

STREAM_PATH = "/self-view/stream"
DEFAULT_H264 = "avc1.42e01f"  # constrained baseline 3.1, the Pi 4 camera's profile


class SelfViewTrack(MediaStreamTrack):
    """The camera's track as the call sends it, with every frame also shown to ``on_frame``.

    The call's sender pulls frames at the camera's pace, as it would from the camera's
    own track; ``on_frame`` runs on the event loop and must be quick. Stopping this
    track stops the camera's.
    """

    kind = "video"

    def __init__(self, source: MediaStreamTrack, on_frame: Callable[[object], None],
                 on_end: Callable[[SelfViewTrack], None]) -> None:
        super().__init__()
        self._source: MediaStreamTrack | None = source
        self._on_frame: Callable[[object], None] | None = on_frame
        self._on_end: Callable[[SelfViewTrack], None] | None = on_end

    async def recv(self):
        source = self._source
        if source is None or self.readyState != "live":
            raise MediaStreamError
        try:
            frame = await source.recv()
        except MediaStreamError:  # the camera stopped by itself: no more pictures for the page either
            self.stop()
            raise
        on_frame = self._on_frame
        if on_frame is not None:
            try:
                on_frame(frame)
            except Exception:  # noqa: BLE001 - the call's video must not suffer for the thumbnail
                log.exception("self view: dropped a frame")
        return frame

    def stop(self) -> None:
        source, on_end = self._source, self._on_end
        self._source = self._on_frame = self._on_end = None
        if self.readyState == "live":
            super().stop()
        if source is not None:
            source.stop()  # the camera (and its light) goes off with the call
        if on_end is not None:
            on_end(self)


def scaled_size(width: int, height: int, max_height: int) -> tuple[int, int]:
    """``width`` x ``height`` scaled to at most ``max_height`` lines, both even, aspect kept."""
    if height <= max_height:
        return width // 2 * 2, height // 2 * 2
    return max(2, round(width * max_height / height / 2) * 2), max_height // 2 * 2


def h264_codec_string(data: bytes) -> str | None:
    """WebCodecs' ``avc1.PPCCLL`` from the SPS in an Annex B access unit (None without one)."""
    pos = data.find(b"\x00\x00\x01")
    while 0 <= pos and pos + 7 <= len(data):
        if data[pos + 3] & 0x1F == 7:  # SPS: profile_idc, constraint flags, level_idc follow the NAL header
            return "avc1." + data[pos + 4:pos + 7].hex()
        pos = data.find(b"\x00\x00\x01", pos + 3)
    return None


class SelfViewFeed(StreamFeed):
    """Streams the kiosk camera's picture of the current call to the kiosk page.

    :meth:`attach` and :meth:`detach` run on the event loop; the stream is served by
    Flask's threads. ``stats`` counts frames for tests and diagnostics.
    """

    stream_path = STREAM_PATH
    blueprint_name = "self_view"
    busy_message = "Too many viewers of the own picture."

    def __init__(self, *, fps: float = 15.0, height: int = 180, h264_key_frames_only: bool = True,
                 keepalive_s: float = 15.0) -> None:
        super().__init__(keepalive_s, {"frames_in": 0, "frames_out": 0, "scaled": 0, "clients": 0})
        self.fps, self.height, self.h264_key_frames_only = fps, height, h264_key_frames_only
        self._track: SelfViewTrack | None = None
        self._codec: str | None = None
        self._next_raw_s: float | None = None
        self.mode: str | None = None  # "encoded" | "raw" once frames flow

    # -- the event loop's side -----------------------------------------------------
    def attach(self, camera_track: MediaStreamTrack, *, encoded: bool = False) -> MediaStreamTrack:
        """The track for the call to send in place of ``camera_track``; it also feeds the page.

        ``encoded`` is the camera's: H.264 packets rather than frames. It only
        names the mode early; each item is handled by what it is.
        """
        self.detach()
        self._track = SelfViewTrack(camera_track, self._on_frame, self._ended)
        self._next_raw_s = None
        self._codec = None
        self.mode = "encoded" if encoded else "raw"
        if not encoded:
            self._set_config({"mode": "raw"})
        return self._track

    def detach(self) -> None:
        """Stop feeding the page and let go of the track (it is not stopped: the call owns it)."""
        track, self._track = self._track, None
        if track is not None:
            track._on_frame = track._on_end = None
        self.mode = self._codec = None
        self._end_streams(tell_pages=track is not None)

    def _ended(self, track: SelfViewTrack) -> None:
        if track is self._track:
            self.detach()

    def _on_frame(self, item) -> None:
        self.stats["frames_in"] += 1
        if isinstance(item, av.Packet):
            self._on_packet(item)
        elif isinstance(item, av.VideoFrame):
            self._on_video_frame(item)

    def _on_packet(self, packet: av.Packet) -> None:
        key = bool(packet.is_keyframe)
        if not key and self.h264_key_frames_only:
            return
        with self._lock:
            if not self._clients:
                return
        data = bytes(packet)
        codec = (h264_codec_string(data) if key else None) or self._codec or DEFAULT_H264
        if codec != self._codec or self.mode != "encoded":
            self._codec, self.mode = codec, "encoded"
            self._set_config({"mode": "encoded", "codec": codec})
        timestamp_us = int(packet.pts * packet.time_base * 1_000_000) if packet.pts is not None else 0
        self._send_encoded(key, lambda: record(ENCODED, data, key=key, timestamp_us=timestamp_us))

    def _due(self, t: float) -> bool:
        """At most ``fps`` frames a second, on a steady grid (30 fps -> every other frame)."""
        period = 1 / self.fps
        if self._next_raw_s is not None and t < self._next_raw_s - period / 4:  # a little early is on time
            return False
        self._next_raw_s = t + period if self._next_raw_s is None else max(self._next_raw_s + period, t + period / 2)
        return True

    def _on_video_frame(self, frame: av.VideoFrame) -> None:
        t = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base is not None \
            else asyncio.get_running_loop().time()
        if not self._due(t):
            return
        clients = self._clients_with_room()  # a page that is behind skips a frame
        if not clients:
            return
        if self.mode != "raw":
            self.mode = "raw"
            self._set_config({"mode": "raw"})
        width, height = scaled_size(frame.width, frame.height, self.height)
        small = frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA")
        self.stats["scaled"] += 1
        timestamp_us = int(frame.pts * frame.time_base * 1_000_000) if frame.pts is not None else 0
        rec = record(RAW, raw_payload(small), timestamp_us=timestamp_us)
        for client in clients:
            client.offer(rec)
