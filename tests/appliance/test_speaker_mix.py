"""What the kiosk's speaker plays in a call with guests: the clerk's voice with the guests' mixed in,
the clerk's alone untouched, and a guest who leaves simply drops out (in memory, no network)."""
from __future__ import annotations

import numpy as np

from appliance.call.mix import GUEST_BACKLOG_MS, RATE, SpeakerMix, _Voice
from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack


def strength(samples: np.ndarray, frequency: float) -> float:
    """How much of ``frequency`` the mono signal carries, relative to its spectrum's median."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    at = int(round(frequency * len(samples) / RATE))
    return float(spectrum[at - 2:at + 3].max() / np.median(spectrum))


async def played(mix: SpeakerMix, frames: int) -> np.ndarray:
    out = []
    for _ in range(frames):
        frame = await mix.recv()
        channels = len(frame.layout.channels)
        out.append(frame.to_ndarray().reshape(-1, channels)[:, 0].astype(np.float64))
    return np.concatenate(out)


async def test_a_call_of_two_plays_the_clerks_frames_as_they_came():
    clerk = SyntheticMicrophoneTrack(440)
    mix = SpeakerMix(clerk)
    frame = await mix.recv()
    assert frame.layout.name == "mono" and mix.mixed_frames == 0  # no copy, no resampling
    mix.stop()
    clerk.stop()


async def test_the_guests_voice_is_mixed_into_the_clerks():
    clerk, guest = SyntheticMicrophoneTrack(440), SyntheticMicrophoneTrack(1000)
    mix = SpeakerMix(clerk)
    mix.add("g-interpreter1", guest)
    await played(mix, 5)  # the guest's first frames arrive
    sound = await played(mix, 50)
    assert strength(sound, 440) > 50 and strength(sound, 1000) > 0.1 * strength(sound, 440)  # both heard
    assert mix.mixed_frames > 40
    mix.remove("g-interpreter1")
    await played(mix, 3)  # what was buffered of the guest is gone with them
    alone = await played(mix, 50)
    assert strength(alone, 1000) < 0.001 * strength(alone, 440)  # the clerk alone
    mix.stop()
    for track in (clerk, guest):
        track.stop()


def test_a_guest_whose_clock_runs_fast_is_never_heard_later_than_the_backlog():
    voice = _Voice(track=None)
    for _ in range(100):  # two seconds arrive while the clerk's side takes nothing
        voice.add(np.zeros((960, 2), np.int16))
    assert voice.samples <= RATE * GUEST_BACKLOG_MS // 1000
