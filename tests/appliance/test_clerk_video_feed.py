"""The clerk's picture: a real aiortc sender -> the kiosk's aiortc receiver -> ClerkVideoFeed ->
the kiosk's Flask app (with its CSP) -> clerk-video.js in Debian's real headless Chromium.

The picture carries the test pattern's clock; the page reads it back from what the <video>
shows (appliance.hardware.fake.camera.read_clock), so "frames advance" means the clerk's
picture really moves on the kiosk's screen, and its age gives the latency.
"""
from __future__ import annotations

import asyncio
import base64
import gc
import os
import queue
import statistics
import sys
import weakref

import pytest
import pytest_asyncio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from flask import Blueprint, Response

from appliance.hardware.fake.camera import TestPatternTrack, read_clock_crop
from appliance.kiosk import create_app, stream
from appliance.kiosk import video_feed as vf
from appliance.kiosk.video_feed import ClerkVideoFeed, receiver_for
from tests.browser import GREEN_JS, WEBRTC_FLAGS, open_page, poll, require_isolated_network, serve

# The page under test: the kiosk's own elements and module, plus a probe that records, for
# every frame the <video> presents, when (requestVideoFrameCallback) and the clock's corner.
PAGE = """<!doctype html><meta charset="utf-8"><title>clerk video</title><link rel="icon" href="data:,">
<video id="clerk-video" autoplay playsinline width="640" height="480"></video>
<canvas id="clerk-canvas" width="0" height="0"></canvas>
<script type="module" src="/test-clerk-video/probe.js"></script>"""
PROBE = """
import { attach, stats } from '/static/clerk-video.js';
""" + GREEN_JS + """
const video = document.getElementById('clerk-video'), canvas = document.getElementById('clerk-canvas');
const probe = window.probe = { stats, samples: [], presented: 0, detach: attach(video, canvas) };
probe.reattach = () => { probe.detach(); probe.detach = attach(video, canvas); };
function corner(w) {  // the clock code's corner, green channel (= luma on the grey band)
  const c = 16 * Math.max(1, Math.floor(w / 640)), cw = 17 * c, ch = 4 * c;
  return { cw, ch, y: green(video, cw, ch) };
}
function onFrame(now, meta) {
  probe.presented += 1;
  if (probe.presented % 3 === 0 && probe.samples.length < 400) {
    probe.samples.push({ t: performance.timeOrigin + now, media: meta.mediaTime, w: meta.width, ...corner(meta.width) });
  }
  video.requestVideoFrameCallback(onFrame);
}
video.requestVideoFrameCallback(onFrame);
probe.grab = () => {  // what the <video> shows right now, or null
  if (!video.srcObject || !video.videoWidth) return null;
  return { t: performance.timeOrigin + performance.now(), w: video.videoWidth, ...corner(video.videoWidth) };
};
"""


class Bridge:
    """The four calls the kiosk app makes on the appliance's view bridge; nothing else."""

    def current_view(self) -> dict:
        return {"screen": "in_call", "language": "de"}

    def subscribe(self) -> queue.Queue:
        return queue.Queue()

    def unsubscribe(self, q) -> None:
        pass

    def action(self, name, value) -> None:
        raise AssertionError(f"the video page sent an action: {name}")


def clock_of(sample: dict) -> int | None:
    return read_clock_crop(base64.b64decode(sample["y"]), sample["cw"], sample["ch"], sample["w"])


def age_ms(t_ms: float, clock: int) -> float:
    return (t_ms - clock + 2**31) % 2**32 - 2**31


# -- nothing written to disk ------------------------------------------------------------

class DiskWrites:
    """Every file this process opens for writing while ``active`` (an audit hook cannot be removed,
    so one hook serves the whole session and records only while a test asks it to)."""

    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def __init__(self) -> None:
        self.active = False
        self.seen: list[str] = []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple) -> None:
        if not self.active:
            return
        if event == "open" and len(args) >= 3:
            path, mode, flags = args[0], args[1] or "", args[2] or 0
            if any(c in str(mode) for c in "wax+") or (isinstance(flags, int) and flags & self.WRITE_FLAGS):
                self.seen.append(f"open {path!r} {mode!r}")
        elif event in ("os.rename", "os.replace", "os.remove", "os.mkdir", "os.symlink", "os.link", "shutil.copyfile"):
            self.seen.append(f"{event} {args[:2]!r}")


DISK = DiskWrites()


# -- fixtures -----------------------------------------------------------------------------

@pytest.fixture
def feed():
    feed = ClerkVideoFeed(keepalive_s=0.5)
    yield feed
    feed.detach()


@pytest.fixture
def served(feed):
    app = create_app(Bridge(), clerk_video=feed)  # the kiosk's own app: its CSP and host checks apply
    test_bp = Blueprint("test_clerk_video", __name__)
    test_bp.add_url_rule("/test-clerk-video/", "page", lambda: Response(PAGE, mimetype="text/html"))
    test_bp.add_url_rule("/test-clerk-video/probe.js", "probe",
                         lambda: Response(PROBE, mimetype="text/javascript"))
    app.register_blueprint(test_bp)
    with serve(app) as url:
        yield url


@pytest_asyncio.fixture
async def page(served):
    require_isolated_network()
    async with open_page(served + "/test-clerk-video/", "() => window.probe && window.probe.stats.connects > 0",
                         args=WEBRTC_FLAGS) as page:
        yield page


class Call:
    """The clerk (an aiortc sender of the test pattern) and the kiosk's receiving peer."""

    def __init__(self, codec: str = "vp8") -> None:
        self.clerk = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # never a public STUN server
        self.kiosk = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.camera = TestPatternTrack(640, 480, 30)
        transceiver = self.clerk.addTransceiver(self.camera, direction="sendonly")
        if codec == "h264":
            transceiver.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                             if c.mimeType == "video/H264"])
        self.track = asyncio.get_running_loop().create_future()
        self.kiosk.on("track", lambda track: self.track.set_result(track))

    async def connect(self):
        await self.clerk.setLocalDescription(await self.clerk.createOffer())
        await self.kiosk.setRemoteDescription(self.clerk.localDescription)
        await self.kiosk.setLocalDescription(await self.kiosk.createAnswer())
        await self.clerk.setRemoteDescription(RTCSessionDescription(sdp=self.kiosk.localDescription.sdp,
                                                                    type="answer"))
        return await asyncio.wait_for(self.track, 10)

    async def close(self) -> None:
        await self.clerk.close()
        await self.kiosk.close()


@pytest_asyncio.fixture
async def call():
    calls: list[Call] = []

    def make(codec: str = "vp8") -> Call:
        calls.append(Call(codec))
        return calls[-1]

    yield make
    for c in calls:
        await c.close()


async def picture_clock(page) -> int | None:
    grab = await page.evaluate("window.probe.grab()")
    return clock_of(grab) if grab else None


# -- end to end -----------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.netns
@pytest.mark.parametrize("codec", ["vp8", "h264"])
async def test_the_clerks_picture_moves_on_the_page_without_decoding_in_the_kiosk(codec, page, feed, call):
    c = call(codec)
    track = await c.connect()
    DISK.seen.clear()
    DISK.active = True
    try:
        feed.attach(track, receiver_for(c.kiosk, track))
        assert feed.mode == "encoded"
        first = await poll(lambda: picture_clock(page), lambda v: v is not None)
        await asyncio.sleep(1.0)
        second = await poll(lambda: picture_clock(page), lambda v: v is not None and v != first)
        assert 500 <= (second - first) % 2**32 <= 5_000, (first, second)
        await asyncio.sleep(2.0)
        samples = await page.evaluate("window.probe.samples")
        stats = await page.evaluate("window.probe.stats")
        arrivals = dict(feed.arrivals)
    finally:
        DISK.active = False

    assert stats["mode"] == "encoded" and stats["codec"].startswith("vp8" if codec == "vp8" else "avc1.42")
    assert stats["output"] == "video" and stats["errors"] == 0
    assert stats["shown"] > 60 and feed.stats["frames_out"] > 60
    assert feed.stats["decoded"] == 0  # the kiosk process decoded nothing

    # Latency: capture -> on the page (the clock in the picture), and feed -> on the page
    # (the frame's timestamp in the <video> = the one the feed sent it with).
    clocks = [(s, clock_of(s)) for s in samples]
    total = sorted(age_ms(s["t"], v) for s, v in clocks if v is not None)
    added = sorted(s["t"] - arrivals[round(s["media"] * 1e6)] * 1000 for s in samples
                   if s["media"] is not None and round(s["media"] * 1e6) in arrivals)
    assert len(total) >= 20, f"only {len(total)} readable frames of {len(samples)}"
    p50, p95 = statistics.median(total), total[int(0.95 * (len(total) - 1))]
    print(f"\n{codec}: capture -> page p50 {p50:.1f} ms, p95 {p95:.1f} ms ({len(total)} frames); "
          + (f"feed -> page (added) p50 {statistics.median(added):.1f} ms, "
             f"p95 {added[int(0.95 * (len(added) - 1))]:.1f} ms ({len(added)} frames)" if added else "no added figure"))
    assert p50 < 250, total  # loopback, on a shared test machine; the figures themselves are in the bench
    assert added and statistics.median(added) < 100, added
    assert DISK.seen == [], DISK.seen


async def _call_then_detach(page, feed) -> weakref.ref:
    """A whole call shown on the page, then detached and closed; returns a weak reference to its track.
    (A function of its own, so no frame of the test itself holds the track any more.)"""
    c = Call()
    track = await c.connect()
    receiver = receiver_for(c.kiosk, track)
    feed.attach(track, receiver)
    await poll(lambda: picture_clock(page), lambda v: v is not None)
    decoder_queue = receiver._RTCRtpReceiver__decoder_queue
    assert "put" in vars(decoder_queue)  # diverted while attached

    feed.detach()
    assert feed.mode is None and feed._track is None and feed._receiver is None
    assert "put" not in vars(decoder_queue)  # aiortc's own queue again
    await poll(lambda: page.evaluate("window.probe.grab()"), lambda g: g is None, seconds=5)
    shown = await page.evaluate("window.probe.stats.shown")
    out = feed.stats["frames_out"]
    await asyncio.sleep(1.0)
    assert await page.evaluate("window.probe.stats.shown") == shown
    assert feed.stats["frames_out"] == out
    assert feed.stats["clients"] == 1  # the page keeps its stream open for the next call's picture
    await c.close()
    return weakref.ref(track)


@pytest.mark.browser
@pytest.mark.netns
async def test_detach_stops_the_picture_and_lets_go_of_the_track(page, feed, call):
    ref = await _call_then_detach(page, feed)
    await asyncio.sleep(0.2)
    gc.collect()
    assert ref() is None, [type(r).__name__ for r in gc.get_referrers(ref())]  # nothing of ours keeps it

    # The next call's picture appears on the same page without a reload.
    c2 = call()
    track2 = await c2.connect()
    feed.attach(track2, receiver_for(c2.kiosk, track2))
    await poll(lambda: picture_clock(page), lambda v: v is not None)


@pytest.mark.browser
@pytest.mark.netns
async def test_the_end_of_the_call_detaches_by_itself(page, feed, call):
    c = call()
    track = await c.connect()
    feed.attach(track, receiver_for(c.kiosk, track))
    await poll(lambda: picture_clock(page), lambda v: v is not None)
    await c.close()
    await poll(lambda: asyncio.sleep(0, feed.mode), lambda mode: mode is None, seconds=5)
    await poll(lambda: page.evaluate("window.probe.grab()"), lambda g: g is None, seconds=5)


@pytest.mark.browser
@pytest.mark.netns
async def test_a_page_joining_mid_call_gets_a_key_frame(page, feed, call):
    c = call()
    track = await c.connect()
    feed.attach(track, receiver_for(c.kiosk, track))
    await poll(lambda: picture_clock(page), lambda v: v is not None)
    requests = feed.stats["key_requests"]
    await page.evaluate("window.probe.reattach()")  # the call screen left and came back
    await poll(lambda: page.evaluate("window.probe.stats.connects"), lambda n: n >= 2)
    await poll(lambda: picture_clock(page), lambda v: v is not None)
    assert feed.stats["key_requests"] > requests


@pytest.mark.browser
@pytest.mark.netns
async def test_without_a_receiver_the_kiosk_decodes_and_the_picture_still_moves(page, feed, call):
    c = call()
    track = await c.connect()
    feed.attach(track)  # no receiver: the fallback
    assert feed.mode == "raw"
    first = await poll(lambda: picture_clock(page), lambda v: v is not None)
    second = await poll(lambda: picture_clock(page), lambda v: v is not None and v != first)
    assert 0 < (second - first) % 2**32 <= 5_000
    assert await page.evaluate("window.probe.stats.mode") == "raw"


# -- the pieces ----------------------------------------------------------------------------

def test_key_frames_are_recognised():
    assert vf.is_key_frame("vp8", bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A]))   # bit 0 clear
    assert not vf.is_key_frame("vp8", bytes([0x11, 0x02, 0x00]))
    sps_pps_idr = b"\x00\x00\x00\x01\x67sps\x00\x00\x00\x01\x68pps\x00\x00\x00\x01\x65idr"
    assert vf.is_key_frame("avc1.42e01f", sps_pps_idr)
    assert not vf.is_key_frame("avc1.42e01f", b"\x00\x00\x00\x01\x41slice")


def test_record_layout():
    rec = stream.record(stream.ENCODED, b"abc", key=True, timestamp_us=2**40 + 5)
    assert rec == bytes([2, 1, 0, 0, 3, 0, 0, 0]) + (2**40 + 5).to_bytes(8, "little") + b"abc"


def test_a_page_that_falls_behind_restarts_at_a_key_frame():
    client = stream.Client()
    for i in range(stream.ENCODED_BACKLOG):
        assert client.offer(b"frame %d" % i)
    assert not client.offer(b"one too many")
    assert client.queue.empty()


def test_stream_refuses_a_crowd_and_ends_with_the_call(feed):
    app = create_app(Bridge(), clerk_video=feed)
    feed._track = object()  # as if attached, so detach announces the end
    clients = []
    for _ in range(stream.MAX_CLIENTS):
        res = app.test_client().get(vf.STREAM_PATH, buffered=False)
        assert res.status_code == 200 and res.headers["Cache-Control"] == "no-store"
        assert next(res.response)[:1] == bytes([stream.KEEPALIVE])
        clients.append(res)
    assert app.test_client().get(vf.STREAM_PATH).status_code == 503
    feed.detach()
    for res in clients:
        assert next(res.response)[:1] == bytes([stream.END])
        res.close()
    assert feed.stats["clients"] == 0
