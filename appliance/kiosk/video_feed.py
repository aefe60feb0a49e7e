"""The clerk's picture for the kiosk page, passed through without decoding.

The clerk's browser sends VP8 or H.264 (whatever the call negotiated). aiortc
would decode every frame in the kiosk process; instead, :class:`ClerkVideoFeed`
takes the reassembled *encoded* frames from the call's receiver and streams them
to the page, which decodes them with WebCodecs and shows them in
``<video id="clerk-video">`` (static/clerk-video.js). One decode per frame on the
whole appliance, none of it in Python: the cheapest path measured, see
docs/decisions/0004-kiosk-clerk-video-path.md.

aiortc has no public way to receive without decoding, so
:func:`~appliance.call.receiver_tap.tap_encoded_frames` diverts its receiver's
private decoder queue. If that ever stops fitting the installed aiortc, or no
receiver is given, the feed decodes in the kiosk as aiortc
normally does and streams raw I420 frames instead: dearer, but the citizen still
sees the clerk. A warning in the log says so.

Wiring (appliance.service.main)::

    feed = ClerkVideoFeed()
    app = create_app(bridge, clerk_video=feed)  # calls feed.init_app(app): GET /clerk-video/stream
    # CallPeer(on_remote_track=...) for the video track, on the event loop:
    feed.attach(track, receiver_for(peer.pc, track))
    # the feed detaches by itself when the track ends (the call closed); at shutdown:
    feed.detach()

The stream format and the serving of pages are :mod:`appliance.kiosk.stream`'s.

Nothing is written anywhere: frames live in bounded in-memory queues and are
dropped once sent.
"""
from __future__ import annotations

import asyncio
import logging
import time

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from appliance.call.receiver_tap import receiver_for, tap_encoded_frames, untap_encoded_frames
from appliance.kiosk.stream import ENCODED, RAW, StreamFeed, raw_payload, record

__all__ = ["ClerkVideoFeed", "receiver_for", "tap_encoded_frames", "untap_encoded_frames"]

log = logging.getLogger(__name__)

STREAM_PATH = "/clerk-video/stream"
KEY_REQUEST_GAP_S = 0.5  # at most this often ask the clerk's browser for a key frame


def codec_config(codec) -> dict:
    """WebCodecs' name for the negotiated codec: "vp8" or "avc1.<profile-level-id>"."""
    name = codec.mimeType.split("/")[-1].lower()
    if name == "h264":
        return {"mode": "encoded", "codec": "avc1." + str(codec.parameters.get("profile-level-id", "42e01f"))}
    return {"mode": "encoded", "codec": name}


def is_key_frame(codec_name: str, data: bytes) -> bool:
    if codec_name == "vp8":
        return bool(data) and not data[0] & 1  # frame tag bit 0: 0 = key frame
    # H.264 Annex B as aiortc depacketizes it: a key frame carries an IDR slice (NAL type 5)
    pos = data.find(b"\x00\x00\x01")
    while pos >= 0 and pos + 3 < len(data):
        if data[pos + 3] & 0x1F == 5:
            return True
        pos = data.find(b"\x00\x00\x01", pos + 3)
    return False


class ClerkVideoFeed(StreamFeed):
    """Streams the clerk's video track of the current call to the kiosk page.

    :meth:`attach` and :meth:`detach` run on the event loop (aiortc's); the
    stream is served by Flask's threads. ``stats`` counts frames for tests
    and diagnostics; ``arrivals`` maps a frame's timestamp to when it arrived (the last 256).
    """

    stream_path = STREAM_PATH
    blueprint_name = "clerk_video"
    busy_message = "Too many viewers of the clerk's picture."

    def __init__(self, keepalive_s: float = 15.0) -> None:
        super().__init__(keepalive_s, {"frames_in": 0, "decoded": 0, "frames_out": 0, "key_requests": 0, "clients": 0})
        self._loop: asyncio.AbstractEventLoop | None = None
        self._track: MediaStreamTrack | None = None
        self._receiver = None
        self._task: asyncio.Task | None = None
        self._last_key_request = 0.0
        self.mode: str | None = None  # "encoded" | "raw" while attached
        self.arrivals: dict[int, float] = {}  # timestamp_us -> time.time()

    # -- the event loop's side -----------------------------------------------------
    def attach(self, track: MediaStreamTrack, receiver=None) -> None:
        """Show ``track`` (the clerk's video) on the page, replacing any earlier one."""
        self.detach()
        self._loop = asyncio.get_running_loop()
        self._track, self._receiver = track, receiver
        if receiver is not None and tap_encoded_frames(receiver, self._on_encoded):
            self.mode = "encoded"
            self._task = self._loop.create_task(self._watch_end(track), name="clerk-video-end")
        else:
            log.warning("clerk video: decoding in the kiosk process (%s); this costs more CPU",
                        "no receiver given" if receiver is None else "this aiortc cannot pass frames through")
            self.mode = "raw"
            self._set_config({"mode": "raw"})
            self._task = self._loop.create_task(self._decode(track), name="clerk-video-decode")
        with self._lock:
            encoded = self.mode == "encoded"
            for client in self._clients:  # pages already waiting for the picture
                client.need_key = True
            if encoded and self._clients:
                self._request_key_frame()

    def detach(self) -> None:
        """Stop showing the current track; release it. Pages get an end record and reconnect later."""
        if self._receiver is not None and self.mode == "encoded":
            untap_encoded_frames(self._receiver)
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        attached = self._track is not None
        self._task = self._track = self._receiver = None
        self.mode = None
        self._end_streams(tell_pages=attached)
        self.arrivals.clear()

    def _on_encoded(self, codec, frame) -> None:
        """From aiortc's receiver, on the event loop: one complete encoded frame."""
        config = codec_config(codec)
        if config != self._config:
            self._set_config(config)
        self.stats["frames_in"] += 1
        key = is_key_frame(config["codec"], frame.data)
        timestamp_us = frame.timestamp * 100 // 9  # 90 kHz -> microseconds
        self._note_arrival(timestamp_us)
        lost = self._send_encoded(key, lambda: record(ENCODED, frame.data, key=key, timestamp_us=timestamp_us))
        with self._lock:
            waiting = any(c.need_key for c in self._clients)
        if lost or waiting:
            self._request_key_frame()

    def _request_key_frame(self) -> None:
        """Ask the clerk's browser for a key frame (RTCP PLI), at most every KEY_REQUEST_GAP_S."""
        now = time.monotonic()
        receiver = self._receiver
        if receiver is None or now - self._last_key_request < KEY_REQUEST_GAP_S:
            return
        sources = receiver.getSynchronizationSources()
        if not sources:
            return  # nothing received yet: the first frame of a call is a key frame anyway
        self._last_key_request = now
        self.stats["key_requests"] += 1
        self._loop.create_task(receiver._send_rtcp_pli(sources[0].source))

    def _note_arrival(self, timestamp_us: int) -> None:
        self.arrivals[timestamp_us] = time.time()
        if len(self.arrivals) > 256:
            del self.arrivals[next(iter(self.arrivals))]

    async def _watch_end(self, track: MediaStreamTrack) -> None:
        # With the tap in place the decoder gets nothing, so recv() only returns when
        # the receiver stops: the call is over.
        try:
            while True:
                await track.recv()  # only a frame aiortc decoded before the tap was in place
                self.stats["decoded"] += 1
        except MediaStreamError:
            if self._track is track:
                self.detach()

    async def _decode(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                self.stats["frames_in"] += 1
                self.stats["decoded"] += 1
                timestamp_us = int(frame.pts * frame.time_base * 1_000_000) if frame.pts is not None else 0
                self._note_arrival(timestamp_us)
                clients = self._clients_with_room()
                if clients:
                    rec = record(RAW, raw_payload(frame), timestamp_us=timestamp_us)
                    for client in clients:
                        client.offer(rec)
        except MediaStreamError:
            if self._track is track:
                self.detach()

    def _page_joined(self) -> None:
        if self.mode == "encoded" and self._loop is not None:  # a key frame, so the new page starts soon
            self._loop.call_soon_threadsafe(self._request_key_frame)
