"""The kiosk's video follows the clerk's browser: H.264 passed through where it is taken, VP8 from the
camera's frames where not, and audio alone where the browser refuses the video (real aiortc peers over
loopback; the clerk's side stands for Chromium, for Firefox without OpenH264, and for a browser that
rejects the video section as Firefox does)."""
from __future__ import annotations

import asyncio
import itertools
import statistics

from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from appliance.call.answer import split_sections
from appliance.call.peer import FALLBACK_FPS, FALLBACK_HEIGHT, FALLBACK_WIDTH, CallPeer, offered_video_codecs
from appliance.hardware.fake.backend import FakeCamera
from appliance.hardware.fake.camera import read_clock
from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack
from tests.browser import require_isolated_network

VP8_ONLY = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/VP8"]


def as_firefox_rejects_video(answer: str) -> str:
    """What Firefox answers for a video section it cannot decode: port 0, no transport, out of the bundle."""
    session, sections = split_sections(answer)
    mids = []
    for index, section in enumerate(sections):
        mid = next(line for line in section if line.startswith("a=mid:")).removeprefix("a=mid:")
        if section[0].startswith("m=video "):
            sections[index] = [section[0].split()[0] + " 0 UDP/TLS/RTP/SAVPF 120", "c=IN IP4 0.0.0.0",
                               "a=inactive", f"a=mid:{mid}", "a=rtpmap:120 VP8/90000"]
        else:
            mids.append(mid)
    session = ["a=group:BUNDLE " + " ".join(mids) if line.startswith("a=group:BUNDLE") else line
               for line in session]
    return "\r\n".join([*session, *itertools.chain(*sections)]) + "\r\n"


class Call:
    """A Pi 4 kiosk (the fake camera's H.264 passthrough) calling a clerk's aiortc peer."""

    def __init__(self, clerk_video_codecs=None, size=(640, 480), frames=None):
        self.camera = FakeCamera(*size, fps=30, encoded=True)
        self.states: list[str] = []
        self.connected = asyncio.Event()
        self.camera_track = self.camera.track()
        self.kiosk = CallPeer([], [self.camera_track, SyntheticMicrophoneTrack()],
                              video_codecs=offered_video_codecs(self.camera.encoded), on_state=self._state,
                              frames=frames or (lambda: self.camera.track(encoded=False)),
                              ice_networks=("127.0.0.0/8",))
        self.clerk = RTCPeerConnection()
        self.received: dict[str, asyncio.Future] = {kind: asyncio.get_running_loop().create_future()
                                                    for kind in ("audio", "video")}
        self.clerk.on("track", lambda track: self.received[track.kind].done()
                      or self.received[track.kind].set_result(track))
        if clerk_video_codecs:
            self.clerk.addTransceiver("video", direction="recvonly").setCodecPreferences(clerk_video_codecs)

    def _state(self, state: str) -> None:
        self.states.append(state)
        if state == "connected":
            self.connected.set()

    async def answer(self, rewrite=lambda sdp: sdp) -> None:
        await self.clerk.setRemoteDescription(RTCSessionDescription(await self.kiosk.offer(), "offer"))
        await self.clerk.setLocalDescription(await self.clerk.createAnswer())
        await self.kiosk.accept_answer(rewrite(self.clerk.localDescription.sdp))
        async with asyncio.timeout(20):
            await self.connected.wait()

    async def video_frames(self, count: int) -> list:
        async with asyncio.timeout(20):
            track = await self.received["video"]
            return [await track.recv() for _ in range(count)]

    async def close(self) -> None:
        await self.kiosk.close()
        await self.clerk.close()
        self.camera.close()


def offered_video(sdp: str) -> list[str]:
    """The codec names of the offer's video section, in its order."""
    video = next(s for s in split_sections(sdp)[1] if s[0].startswith("m=video"))
    return [line.split()[1].split("/")[0] for line in video if line.startswith("a=rtpmap:")]


async def test_a_pi4_kiosk_offers_h264_passthrough_first_and_vp8_as_the_fallback():
    call = Call()
    try:
        codecs = offered_video(await call.kiosk.offer())
        assert codecs[0] == "H264" and "VP8" in codecs
    finally:
        await call.close()


async def test_a_browser_with_h264_gets_the_cameras_packets_unchanged():
    require_isolated_network()
    call = Call()
    try:
        await call.answer()
        assert call.kiosk.video_codec == "video/h264"
        assert call.camera.encoded and call.camera_track.readyState == "live"
        frames = await call.video_frames(20)
    finally:
        await call.close()
    assert {(f.width, f.height) for f in frames} == {(640, 480)}  # the camera's own size
    clocks = [read_clock(f) for f in frames]
    assert None not in clocks and clocks[-1] > clocks[0]  # a moving picture


async def test_a_browser_without_h264_gets_vp8_from_the_cameras_frames_at_the_fallback_size_and_rate():
    require_isolated_network()
    call = Call(clerk_video_codecs=VP8_ONLY, size=(1280, 720))  # Firefox ESR without OpenH264; a Pi 4's size
    try:
        await call.answer()
        assert call.kiosk.video_codec == "video/vp8"
        assert not call.camera.encoded  # the camera was asked for frames before any media flowed
        assert call.camera_track.readyState == "ended"
        frames = await call.video_frames(20)
    finally:
        await call.close()
    assert call.states == ["connected"]  # no fault, no rejection
    scale = min(FALLBACK_WIDTH / 1280, FALLBACK_HEIGHT / 720)  # fitted into the fallback size, aspect kept
    assert {(f.width, f.height) for f in frames} == {(round(1280 * scale), round(720 * scale))}
    clocks = [read_clock(f) for f in frames]
    assert None not in clocks and clocks[-1] > clocks[0]
    # The 30 fps camera reaches the clerk at the fallback's 15 fps (RTP timestamps, 90 kHz).
    steps = [b.pts - a.pts for a, b in itertools.pairwise(frames)]
    assert statistics.median(steps) >= 90000 / FALLBACK_FPS * 0.9


async def test_a_rejected_video_section_leaves_a_call_with_audio_and_says_so():
    require_isolated_network()
    call = Call()
    try:
        await call.answer(as_firefox_rejects_video)  # no "ICE username fragment or password is missing"
        assert "video_rejected" in call.states and "connected" in call.states
        assert call.kiosk.video_codec is None
        assert call.camera_track.readyState == "ended"  # the camera is off: nobody could see it
        async with asyncio.timeout(20):
            audio = await call.received["audio"]
            frames = [await audio.recv() for _ in range(10)]
        assert all(frame.sample_rate == 48000 for frame in frames)
    finally:
        await call.close()


async def test_a_camera_that_gives_no_frames_for_the_fallback_leaves_a_call_with_audio():
    """main.py's ``frames`` reports the camera failed (the clerk and the kiosk page say so) and gives None."""
    require_isolated_network()
    call = Call(clerk_video_codecs=VP8_ONLY, frames=lambda: None)
    try:
        await call.answer()
        assert call.kiosk.video_codec == "video/vp8" and call.camera_track.readyState == "ended"
        async with asyncio.timeout(20):
            audio = await call.received["audio"]
            assert (await audio.recv()).sample_rate == 48000
    finally:
        await call.close()
