"""What the kiosk's speaker plays in a call with guests: the clerk's voice with the guests' mixed in,
the clerk's alone untouched, and a guest who leaves simply drops out (in memory, no network)."""
from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack

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


class DecodedVoice(MediaStreamTrack):
    """Frames as aiortc's Opus decoder gives them (s16, stereo, 48 kHz), every sample ``level``."""

    kind = "audio"

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level, self.pts = level, 0

    async def recv(self) -> av.AudioFrame:
        await asyncio.sleep(0.005)  # paced, so the mix's listener gets its turn
        frame = av.AudioFrame.from_ndarray(np.full((1, 960 * 2), self.level, np.int16), format="s16", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = RATE, self.pts, fractions.Fraction(1, RATE)
        self.pts += 960
        return frame


async def test_loud_voices_together_are_clipped_not_wrapped_around():
    clerk, guest = DecodedVoice(30000), DecodedVoice(20000)
    mix = SpeakerMix(clerk)
    mix.add("g-interpreter1", guest)
    async with asyncio.timeout(5):
        while not mix.mixed_frames:
            frame = await mix.recv()
    samples = frame.to_ndarray()
    assert (samples == 32767).all()  # 50000 would have wrapped to a loud negative click
    assert (frame.format.name, frame.layout.name, frame.sample_rate) == ("s16", "stereo", RATE)
    assert frame.pts is not None and frame.time_base == fractions.Fraction(1, RATE)  # the clerk's timing kept
    mix.stop()
