"""The fake speaker's sound reaches the fake microphone (hardware/fake/room.py), as in a real room."""
from __future__ import annotations

import asyncio

import numpy as np

from appliance.hardware.select import open_hardware
from appliance.selftest import tone


async def listen(track, seconds):
    frames = [await track.recv() for _ in range(int(seconds / 0.02))]
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames])


async def test_a_tone_played_on_the_fake_speaker_is_heard_by_the_fake_microphone():
    hw = open_hardware({"backend": "fake"})
    try:
        track = hw.microphone.track()
        before = await listen(track, 0.5)

        async def play():
            for frame in tone.tone_frames(1.0):
                await hw.speaker.play(frame)
                await asyncio.sleep(0.02)
        player = asyncio.ensure_future(play())
        during = await listen(track, 1.0)
        await player
        assert tone.tone_heard(before, during)
        assert not tone.tone_heard(before, before)
        after = await listen(track, 1.0)  # nothing played any more: the room is quiet again
        assert not tone.tone_heard(before, after[tone.RATE // 2:])
    finally:
        hw.close()
