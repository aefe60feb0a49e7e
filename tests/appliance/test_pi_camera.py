"""The parts of the Pi camera backend that need no camera: frame conversion and the frame track."""
import asyncio

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from appliance.hardware.fake.camera import TestPatternTrack, read_clock
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
