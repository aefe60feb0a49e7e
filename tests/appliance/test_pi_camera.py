"""The parts of the Pi camera backend that need no camera: frame conversion, the frame track, and which
size and rate it asks picamera2 for (against a stand-in for picamera2)."""
import asyncio
import time
import types

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from appliance.hardware.errors import CameraError
from appliance.hardware.fake.camera import TestPatternTrack, read_clock
from appliance.hardware.pi import camera as pi_camera
from appliance.hardware.pi.camera import LatestFrameTrack, yuv420_to_frame


async def pattern(width, height):
    track = TestPatternTrack(width, height, clock=lambda: 1234.567)
    frame = await track.recv()
    track.stop()
    return frame.to_ndarray()  # packed yuv420p, (height * 3 / 2) x width


@pytest.mark.parametrize("width,height,stride", [(640, 480, 640), (656, 480, 704)])
async def test_yuv420_with_and_without_row_padding(width, height, stride):
    packed = await pattern(width, height)
    y = packed[:height]
    chroma = packed[height:].reshape(-1)
    u = chroma[:chroma.size // 2].reshape(height // 2, width // 2)
    v = chroma[chroma.size // 2:].reshape(height // 2, width // 2)
    # Lay it out as picamera2 does: rows padded to the stride, chroma rows to stride / 2.
    padded = np.full(stride * height * 3 // 2, 77, np.uint8)
    padded[:stride * height].reshape(height, stride)[:, :width] = y
    rows = padded[stride * height:].reshape(height, stride // 2)
    rows[:height // 2, :width // 2] = u
    rows[height // 2:, :width // 2] = v
    frame = yuv420_to_frame(padded.reshape(height * 3 // 2, stride), width, height)
    assert (frame.width, frame.height, frame.format.name) == (width, height, "yuv420p")
    assert np.array_equal(frame.to_ndarray(), packed)
    assert read_clock(frame) == 1234567


async def test_latest_frame_track_keeps_the_newest():
    track = LatestFrameTrack(keep=2)
    frames = [yuv420_to_frame(np.full((72, 64), i, np.uint8), 64, 48) for i in range(4)]
    for i, frame in enumerate(frames):
        track.push(frame, captured_at=100.0 + i / 30)
    await asyncio.sleep(0)
    got = [await track.recv(), await track.recv()]
    assert [int(f.to_ndarray()[0, 0]) for f in got] == [2, 3]  # the backlog went, the present stays
    assert [f.pts for f in got] == [0, 3000]
    pending = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0.01)
    track.stop()
    with pytest.raises(MediaStreamError):
        await pending


class FakePicamera2:
    """The calls PiCamera makes on its frames path, nothing more (anything else fails loudly):
    it records each configuration and hands out grey YUV420 pictures of the configured size."""

    @staticmethod
    def global_camera_info():
        return [{"Model": "imx708"}]

    def __init__(self, camera_num: int) -> None:
        self.configured: list[tuple[tuple[int, int], int]] = []
        self.started = False

    def create_video_configuration(self, main: dict, controls: dict) -> dict:
        return {"main": main, "controls": controls}

    def configure(self, config: dict) -> None:
        assert not self.started, "picamera2 is configured only while stopped"
        self.configured.append((config["main"]["size"], config["controls"]["FrameRate"]))

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False

    def capture_array(self, name: str) -> np.ndarray:
        time.sleep(1 / 30)  # paced as a sensor is
        width, height = self.configured[-1][0]
        return np.full((height * 3 // 2, width), 128, np.uint8)

    def close(self) -> None:
        pass


@pytest.fixture
def fake_picamera2(monkeypatch):
    monkeypatch.setattr(pi_camera, "picamera2_module", lambda: types.SimpleNamespace(Picamera2=FakePicamera2))


@pytest.mark.parametrize("size,frames", [((1280, 720), (640, 360)), ((640, 480), (480, 360))])
async def test_a_pi4_gives_frames_for_the_software_encoder_at_the_size_it_affords(fake_picamera2, size, frames):
    camera = pi_camera.PiCamera(*size, fps=30, hardware_encoder=True)
    try:
        assert camera._cam.configured == [(size, 30)]  # ready for its H.264 passthrough
        track = camera.track(encoded=False)  # a clerk without H.264
        frame = await asyncio.wait_for(track.recv(), 5)
        assert (frame.width, frame.height) == frames and not camera.encoded
        assert camera._cam.configured[-1] == (frames, 15)  # the ISP scales, not the CPU
        track.stop()
    finally:
        camera.close()


async def test_a_pi5_gives_frames_at_the_configured_size(fake_picamera2):
    camera = pi_camera.PiCamera(1280, 720, fps=30, hardware_encoder=False)
    try:
        track = camera.track()
        frame = await asyncio.wait_for(track.recv(), 5)
        assert (frame.width, frame.height) == (1280, 720) and not camera.encoded
        assert camera._cam.configured == [((1280, 720), 30)]
        with pytest.raises(CameraError):
            camera.track(encoded=True)  # no encoder to give packets
    finally:
        camera.close()
