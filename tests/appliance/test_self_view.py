"""The citizen's own picture: the call's camera track, teed to the kiosk page.

The camera (FakeCamera: the test pattern, as frames or as Pi-4-style H.264 packets) is
captured once; the call's sender pulls the tee (here: a loop standing in for aiortc's
RTCRtpSender) and the page gets the same frames. The test pattern's clock, read back from
what the page drew, shows that the own picture really moves.
"""
from __future__ import annotations

import asyncio
import base64
import gc
import json
import struct
import threading
import weakref

import av
import numpy as np
import pytest
import pytest_asyncio
from aiortc.mediastreams import MediaStreamError
from flask import Blueprint, Response

from appliance.hardware.fake.backend import FakeCamera
from appliance.hardware.fake.camera import read_clock
from appliance.kiosk import create_app, stream
from appliance.kiosk import self_view as sv
from appliance.kiosk.self_view import SelfViewFeed
from tests.appliance.test_clerk_video_feed import DISK, Bridge
from tests.browser import GREEN_JS, WEBRTC_FLAGS, open_page, poll, require_isolated_network, serve


def parse(chunks: bytes) -> list[tuple[int, int, int, bytes]]:
    """Stream bytes -> [(kind, flags, timestamp_us, payload)]."""
    out, pos = [], 0
    while pos + stream.HEADER.size <= len(chunks):
        kind, flags, _, length, ts = stream.HEADER.unpack_from(chunks, pos)
        pos += stream.HEADER.size
        out.append((kind, flags, ts, chunks[pos:pos + length]))
        pos += length
    return out


def raw_luma(payload: bytes) -> np.ndarray:
    w, h = struct.unpack_from("<II", payload)
    return np.frombuffer(payload, np.uint8, w * h, 8).reshape(h, w)


def upscaled(luma: np.ndarray, width: int) -> np.ndarray:
    """A scaled-down picture back at the camera's width, so read_clock finds its cell size."""
    k = width // luma.shape[1]
    return np.repeat(np.repeat(luma, k, axis=0), k, axis=1)


class Sender:
    """Pulls the call's video track at its own pace, as aiortc's RTCRtpSender does."""

    def __init__(self, track) -> None:
        self.track, self.items = track, []
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                self.items.append(await self.track.recv())
                del self.items[:-5]
        except MediaStreamError:
            pass


class StreamReader:
    """One page's GET /self-view/stream through Flask's test client, read on a thread."""

    def __init__(self, app) -> None:
        self.response = app.test_client().get(sv.STREAM_PATH, buffered=False)
        assert self.response.status_code == 200 and self.response.headers["Cache-Control"] == "no-store"
        self.data = bytearray()
        self.done = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for chunk in self.response.response:
            self.data += chunk
        self.done.set()

    def records(self):
        return parse(bytes(self.data))

    def close(self) -> None:
        assert self.done.wait(3), "the stream did not end with the call"
        self.response.close()


@pytest.fixture
def feed():
    feed = SelfViewFeed(keepalive_s=0.5)
    yield feed
    feed.detach()


@pytest.fixture
def app(feed):
    return create_app(Bridge(), self_view=feed)


async def test_raw_frames_reach_the_page_small_at_15_fps_and_the_call_gets_every_frame(feed, app):
    camera = FakeCamera(1280, 720, 30)
    source = camera.track()
    reader = StreamReader(app)
    DISK.seen.clear()
    DISK.active = True
    try:
        track = feed.attach(source, encoded=camera.encoded)
        sender = Sender(track)
        await asyncio.sleep(2.0)
        records = [r for r in reader.records() if r[0] == stream.RAW]
        frames_in = feed.stats["frames_in"]
        assert isinstance(sender.items[-1], av.VideoFrame) and sender.items[-1].width == 1280  # the call: unchanged
    finally:
        DISK.active = False
        track.stop()
        await sender.task
        reader.close()
    configs = [json.loads(r[3]) for r in reader.records() if r[0] == stream.CONFIG]
    assert configs == [{"mode": "raw"}]
    assert 50 <= frames_in <= 65  # the call got the camera's 30 fps
    assert 22 <= len(records) <= frames_in // 2 + 1  # the page at most 15
    assert all(struct.unpack_from("<II", r[3]) == (320, 180) and len(r[3]) == 8 + 320 * 180 * 3 // 2 for r in records)
    clocks = [read_clock(upscaled(raw_luma(r[3]), 1280)) for r in records]
    assert all(c is not None for c in clocks), clocks
    steps = np.diff(clocks)
    assert steps.min() > 0 and 50 <= np.median(steps) <= 80  # moving, every other frame
    assert feed.stats["scaled"] == len(records)
    assert DISK.seen == [], DISK.seen


@pytest.mark.parametrize("key_only", [True, False])
async def test_h264_packets_pass_through_unchanged(key_only, app, feed):
    feed.h264_key_frames_only = key_only
    camera = FakeCamera(640, 480, 30, encoded=True)
    source = camera.track()
    reader = StreamReader(app)
    track = feed.attach(source, encoded=camera.encoded)
    sender = Sender(track)
    try:
        await asyncio.sleep(2.5)
        sent = list(sender.items)
    finally:
        track.stop()
        await sender.task
        reader.close()
    assert all(isinstance(p, av.Packet) for p in sent)
    records = reader.records()
    configs = [json.loads(r[3]) for r in records if r[0] == stream.CONFIG]
    assert len(configs) == 1 and configs[0]["mode"] == "encoded" and configs[0]["codec"].startswith("avc1.42")
    frames = [r for r in records if r[0] == stream.ENCODED]
    keys = [r for r in frames if r[1] & 1]
    assert frames[0][1] & 1 and 2 <= len(keys) <= 3  # one key frame a second
    if key_only:
        assert frames == keys
    else:
        assert len(frames) >= 60
    # What the page gets decodes to the camera's picture: the bytes are the encoder's own.
    decoder = av.CodecContext.create("h264", "r")
    pictures = [f for r in frames for p in decoder.parse(r[3]) for f in decoder.decode(p)]
    clocks = [read_clock(f) for f in pictures]
    assert clocks and all(c is not None for c in clocks)
    assert records[-1][0] == stream.END


async def test_stopping_the_calls_track_stops_the_camera_and_the_feed_lets_go(app, feed):
    for encoded in (False, True):
        camera = FakeCamera(640, 480, 30, encoded=encoded)
        source = camera.track()
        reader = StreamReader(app)
        track = feed.attach(source, encoded=encoded)
        sender = Sender(track)
        await poll(lambda: asyncio.sleep(0, feed.stats["frames_in"]), lambda n: n > 35)
        track.stop()  # CallPeer.close at the end of the call
        await asyncio.wait_for(sender.task, 2)
        assert source.readyState == "ended"  # the camera is off
        assert camera._track is None or not encoded  # (the fake raw camera keeps its ended track)
        assert feed._track is None and feed.mode is None
        await asyncio.wait_for(asyncio.to_thread(reader.done.wait, 2), 3)
        assert reader.records()[-1][0] == stream.END
        reader.close()
        await asyncio.sleep(0.1)
        assert feed.stats["clients"] == 0
        ref = weakref.ref(source)
        del source, track, sender, camera
        gc.collect()
        assert ref() is None  # nothing of the feed keeps the camera's track
        feed.stats["frames_in"] = 0


async def test_a_camera_that_stops_by_itself_ends_the_self_view(feed):
    camera = FakeCamera(640, 480, 30)
    source = camera.track()
    track = feed.attach(source)
    sender = Sender(track)
    await poll(lambda: asyncio.sleep(0, feed.stats["frames_in"]), lambda n: n > 3)
    source.stop()
    await asyncio.wait_for(sender.task, 2)
    assert track.readyState == "ended" and feed._track is None


async def test_a_broken_self_view_never_breaks_the_calls_video(feed, monkeypatch):
    monkeypatch.setattr(feed, "_on_video_frame", lambda frame: 1 / 0)
    track = feed.attach(FakeCamera(640, 480, 30).track())
    try:
        for _ in range(3):
            assert isinstance(await track.recv(), av.VideoFrame)
    finally:
        track.stop()


def test_scaled_size_and_codec_string():
    assert sv.scaled_size(1280, 720, 180) == (320, 180)
    assert sv.scaled_size(640, 480, 180) == (240, 180)
    assert sv.scaled_size(320, 180, 180) == (320, 180)
    assert sv.h264_codec_string(b"\x00\x00\x00\x01\x67\x42\xc0\x1f\xaa\x00\x00\x01\x68pps") == "avc1.42c01f"
    assert sv.h264_codec_string(b"\x00\x00\x00\x01\x41slice") is None


# -- in a real Chromium: the kiosk app's own module draws the picture into the canvas ---------------

PAGE = """<!doctype html><meta charset="utf-8"><title>self view</title><link rel="icon" href="data:,">
<canvas id="self-view-canvas"></canvas>
<script type="module" src="/test-self-view/probe.js"></script>"""
PROBE = """
import { attach, stats } from '/static/self-view.js';
""" + GREEN_JS + """
const canvas = document.getElementById('self-view-canvas');
window.probe = { stats, detach: attach(canvas) };
window.probe.grab = () => {  // the canvas' green channel (= luma on the grey band), or null while empty
  if (!canvas.width || !canvas.height || !stats.shown) return null;
  return { w: canvas.width, h: canvas.height, y: green(canvas, canvas.width, canvas.height) };
};
"""


@pytest_asyncio.fixture
async def page(app):
    require_isolated_network()
    test_bp = Blueprint("test_self_view", __name__)
    test_bp.add_url_rule("/test-self-view/", "page", lambda: Response(PAGE, mimetype="text/html"))
    test_bp.add_url_rule("/test-self-view/probe.js", "probe", lambda: Response(PROBE, mimetype="text/javascript"))
    app.register_blueprint(test_bp)
    with serve(app) as url:
        async with open_page(url + "/test-self-view/", "() => window.probe && window.probe.stats.connects > 0",
                             args=WEBRTC_FLAGS) as page:
            yield page


async def canvas_clock(page, camera_width: int) -> int | None:
    grab = await page.evaluate("window.probe.grab()")
    if not grab:
        return None
    luma = np.frombuffer(base64.b64decode(grab["y"]), np.uint8).reshape(grab["h"], grab["w"])
    return read_clock(upscaled(luma, camera_width))


@pytest.mark.browser
@pytest.mark.netns
@pytest.mark.parametrize("encoded", [False, True], ids=["raw", "h264"])
async def test_the_own_picture_moves_on_the_page(encoded, page, feed):
    camera = FakeCamera(1280, 720, 30, encoded=encoded)
    track = feed.attach(camera.track(), encoded=camera.encoded)
    sender = Sender(track)
    try:
        first = await poll(lambda: canvas_clock(page, 1280), lambda v: v is not None)
        await asyncio.sleep(1.2)
        second = await poll(lambda: canvas_clock(page, 1280), lambda v: v is not None and v != first)
        assert 500 <= (second - first) % 2**32 <= 5_000, (first, second)
        stats = await page.evaluate("window.probe.stats")
        assert stats["output"] == "canvas" and stats["errors"] == 0
        assert stats["mode"] == ("encoded" if encoded else "raw")
        assert (await page.evaluate("[window.probe.grab().w, window.probe.grab().h]")) == [320, 180]
    finally:
        track.stop()
        await sender.task
    # The call is over: the canvas is empty again, so the placeholder shows.
    await poll(lambda: page.evaluate("document.getElementById('self-view-canvas').width"), lambda w: w == 0, seconds=5)
