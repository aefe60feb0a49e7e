"""The call's watch on its camera and microphone (appliance/call/devices.py)."""
from __future__ import annotations

import asyncio

import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from appliance.call.devices import WatchedTrack, open_track
from appliance.hardware.errors import CameraError
from appliance.hardware.fake.backend import FakeCamera, FakeMicrophone


class Stalled(MediaStreamTrack):
    kind = "video"

    async def recv(self):
        await asyncio.Event().wait()  # a capture call that never returns


async def test_a_device_ending_by_itself_is_reported_once():
    failed = []
    microphone = FakeMicrophone()
    track = WatchedTrack(microphone.track(), lambda: failed.append(1))
    await track.recv()
    microphone.fail(after_frames=2)
    await track.recv()
    await track.recv()
    for _ in range(2):
        with pytest.raises(MediaStreamError):
            await track.recv()
    assert failed == [1] and track.readyState == "ended"


async def test_stopping_the_call_is_no_fault():
    failed = []
    camera = FakeCamera()
    track = WatchedTrack(camera.track(), lambda: failed.append(1))
    await track.recv()
    track.stop()  # the call ends
    with pytest.raises(MediaStreamError):
        await track.recv()
    assert failed == [] and camera._track.readyState == "ended"  # and the camera is off


async def test_a_stalled_device_is_a_failed_one():
    failed = []
    track = WatchedTrack(Stalled(), lambda: failed.append(1), stall_s=0.2)
    with pytest.raises(MediaStreamError):
        await track.recv()
    assert failed == [1]


async def test_a_device_that_does_not_start_gives_no_track_and_is_reported():
    failed = []
    camera = FakeCamera()
    camera.fail()
    assert open_track(camera.track, "camera", lambda: failed.append(1)) is None
    assert failed == [1]
    with pytest.raises(CameraError):
        camera.track()
    camera.repair()
    assert open_track(camera.track, "camera", lambda: failed.append(2)) is not None and failed == [1]


async def test_the_first_frame_says_the_device_works_once():
    working = []
    track = WatchedTrack(FakeMicrophone().track(), lambda: None, on_working=lambda: working.append(1))
    for _ in range(3):
        await track.recv()
    assert working == [1]
    track.stop()
