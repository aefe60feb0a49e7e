"""The mouth-to-ear benchmark's click and ear: a click said into the fake microphone survives Opus (as a call
carries it) and is heard once, at its own sample; the microphone's tone alone is never taken for a click."""
from __future__ import annotations

import asyncio
import time

import av
import numpy as np
from aiortc.codecs.opus import OpusDecoder, OpusEncoder
from aiortc.jitterbuffer import JitterFrame

from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack
from appliance.hardware.resample import PlaybackResampler
from bench._kiosk_call.mouth_to_ear import RATE, THRESHOLD, Ear, click


def through_opus(frames):
    """The microphone's frames as the clerk's side gets them: Opus-encoded by aiortc and decoded, 48 kHz mono."""
    encoder, decoder, resample = OpusEncoder(), OpusDecoder(), PlaybackResampler()
    out = []
    for frame in frames:
        payloads, timestamp = encoder.encode(frame)
        for payload in payloads:
            for decoded in decoder.decode(JitterFrame(payload, timestamp)):
                out.extend(resample(decoded))
    return out


def microphone_frames(count: int, say_after: int | None = None):
    async def run():
        track = SyntheticMicrophoneTrack()
        frames = []
        for i in range(count):
            if i == say_after:
                track.say(click())
            frames.append(await track.recv())
        return frames
    return asyncio.run(run())


def test_a_click_through_opus_is_heard_once_and_the_tone_never():
    heard: list[float] = []
    ear = Ear(heard.append)
    for frame in through_opus(microphone_frames(30)):  # 600 ms of the tone: loud and quiet halves
        ear(frame)
    assert heard == []
    for frame in through_opus(microphone_frames(20, say_after=10)):
        ear(frame)
    assert len(heard) == 1


def test_the_ear_stamps_the_clicks_first_loud_sample():
    heard: list[float] = []
    ear = Ear(heard.append)
    samples = np.zeros(960)
    samples[300:300 + 100] = click()[:100]
    frame = av.AudioFrame.from_ndarray((samples * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = RATE
    before = time.time()
    ear(frame)
    after = time.time()
    (at,) = heard
    first_loud = 300 + int(np.argmax(np.abs(click()[:100]) > THRESHOLD))
    assert before + first_loud / RATE <= at <= after + first_loud / RATE
