"""Tests for the fake camera and microphone tracks."""

import asyncio
import fractions
import itertools
import time

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from appliance.hardware.fake.camera import TestPatternTrack, read_clock
from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack


def grab(track, count):
    async def _grab():
        return [await track.recv() for _ in range(count)]

    return asyncio.run(_grab())


def stepping_clock(start, step):
    values = itertools.count(start, step)
    return lambda: next(values)


def expected_ms(t):
    return int(t * 1000) % 2**32


# --- camera -----------------------------------------------------------------

@pytest.mark.parametrize("width,height", [(640, 480), (320, 240), (1280, 720)])
def test_frame_size_and_format(width, height):
    frame = grab(TestPatternTrack(width, height), 1)[0]
    assert (frame.width, frame.height) == (width, height)
    assert frame.format.name == "yuv420p"
    assert frame.time_base == fractions.Fraction(1, 90000)


def test_frames_move_even_with_frozen_clock():
    # A frozen clock isolates the moving block: the picture must still change.
    frames = grab(TestPatternTrack(fps=30, clock=lambda: 1000.0), 5)
    pixels = [f.to_ndarray() for f in frames]
    for a, b in zip(pixels, pixels[1:]):
        assert np.count_nonzero(a != b) > 1000


def test_pacing_roughly_at_fps():
    track = TestPatternTrack(fps=30)
    start = time.monotonic()
    frames = grab(track, 11)
    elapsed = time.monotonic() - start
    assert 0.2 < elapsed < 2.0  # nominally 10/30 s
    assert [f.pts for f in frames] == [i * 3000 for i in range(11)]


@pytest.mark.parametrize("t", [0.0, 1234567.891, 1_700_000_000.123, 4294967.295, 4294967.296])
def test_read_clock_round_trip_raw(t):
    track = TestPatternTrack(clock=lambda: t)
    frame = grab(track, 1)[0]
    assert track.last_clock_ms == expected_ms(t)
    assert read_clock(frame) == expected_ms(t)
    assert read_clock(frame.to_ndarray()) == expected_ms(t)  # packed yuv420p
    assert read_clock(frame.to_ndarray(format="rgb24")) == expected_ms(t)
    assert read_clock(frame.reformat(format="gray").to_ndarray()) == expected_ms(t)


def test_read_clock_tracks_the_clock():
    frames = grab(TestPatternTrack(fps=200, clock=stepping_clock(1_700_000_000.0, 0.005)), 4)
    values = [read_clock(f) for f in frames]
    assert values == [expected_ms(1_700_000_000.0 + 0.005 * i) for i in range(4)]


def test_read_clock_rejects_other_pictures():
    assert read_clock(np.zeros((480, 640), np.uint8)) is None
    assert read_clock(np.full((480, 640), 255, np.uint8)) is None
    rng = np.random.default_rng(1)
    assert read_clock(rng.integers(0, 256, (480, 640), dtype=np.uint8)) is None
    assert read_clock(np.zeros((10, 10), np.uint8)) is None
    # A flipped bit must fail the checksum rather than give a wrong time.
    luma = grab(TestPatternTrack(clock=lambda: 1234.5), 1)[0].to_ndarray()[:480].copy()
    luma[16 * 3 + 4:16 * 3 + 12, 16 + 4:16 + 12] ^= 0xFF  # first data cell of the third row
    assert read_clock(luma) is None


@pytest.mark.parametrize("encoder,decoder,options", [
    ("libx264", "h264", {"preset": "ultrafast", "tune": "zerolatency"}),
    ("libvpx", "vp8", {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}),
])
def test_read_clock_survives_lossy_codec(encoder, decoder, options):
    width, height, count = 640, 480, 15
    track = TestPatternTrack(width, height, fps=200, clock=stepping_clock(1_700_000_000.0, 0.0333))
    frames = grab(track, count)
    expected = [read_clock(f) for f in frames]
    assert None not in expected

    enc = av.CodecContext.create(encoder, "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.time_base = fractions.Fraction(1, 90000)
    enc.framerate = fractions.Fraction(30, 1)
    enc.bit_rate = 300_000  # modest, WebRTC-like
    enc.options = options
    packets = []
    for i, frame in enumerate(frames):
        frame.pts = i * 3000  # encode as 30 fps regardless of the fast capture
        packets += enc.encode(frame)
    packets += enc.encode(None)

    dec = av.CodecContext.create(decoder, "r")
    decoded = [f for p in packets for f in dec.decode(p)] + list(dec.decode(None))
    assert len(decoded) == count
    assert [read_clock(f) for f in decoded] == expected


# --- microphone -------------------------------------------------------------

def test_microphone_frames():
    frames = grab(SyntheticMicrophoneTrack(), 10)
    for frame in frames:
        assert frame.samples == 960
        assert frame.sample_rate == 48000
        assert frame.format.name == "s16"
        assert frame.layout.name == "mono"
        assert frame.time_base == fractions.Fraction(1, 48000)
        samples = frame.to_ndarray().astype(np.float64) / 32768
        assert samples.shape == (1, 960)
        assert np.sqrt(np.mean(samples**2)) > 0.05  # tone at ~0.3 full scale
    assert [f.pts for f in frames] == [i * 960 for i in range(10)]


def test_microphone_pacing_and_pulsing_but_never_silent():
    start = time.monotonic()
    frames = grab(SyntheticMicrophoneTrack(), 30)  # 600 ms: loud half, then quiet
    assert 0.3 < time.monotonic() - start < 3.0  # nominally 29 * 20 ms
    rms = [np.sqrt(np.mean((f.to_ndarray().astype(np.float64) / 32768) ** 2)) for f in frames]
    assert min(rms[1:24]) > 0.15  # 0.3 amplitude sine -> ~0.21 RMS
    assert 0.005 < max(rms[26:]) < 0.05  # quiet half is quieter, not silent


def test_microphone_hears_what_is_said_when_it_is_said():
    """A click said into the microphone is in its sound from that moment on, and its frame is handed
    out only once the frame is full (as a sound card delivers a period), never before the click."""
    click = 0.9 * np.sin(2 * np.pi * 1000 * np.arange(720) / 48000)  # 15 ms

    async def run():
        track = SyntheticMicrophoneTrack()
        for _ in range(3):
            await track.recv()
        before = time.monotonic()
        said = track.say(click)
        after = time.monotonic()
        # Read on until the click's last sample has been handed out: a loaded machine may have
        # stalled this reader after say(), so the click can start several frames ahead of it.
        click_ends = said + click.size / 48000
        frames = []
        for _ in range(50):  # one second of frames at most
            frame = await track.recv()
            frames.append((frame, time.monotonic()))
            captured_until = track._start + (frame.pts + frame.samples) / 48000
            if captured_until >= click_ends + 0.02:
                break
        return before, said, after, frames

    before, said, after, frames = asyncio.run(run())
    assert before <= said <= after + 1 / 48000
    loud = [(f, at, np.flatnonzero(np.abs(f.to_ndarray().reshape(-1)) > 0.6 * 32768)) for f, at in frames]
    with_click = [(f, at, idx) for f, at, idx in loud if idx.size]
    assert with_click, "the click never reached the microphone's frames"
    frame, handed_out_at, idx = with_click[0]
    onset = frame.pts + idx[0]
    # The frame holding the click's start leaves the microphone once its last sample is captured.
    assert handed_out_at >= said + (frame.pts + frame.samples - onset) / 48000 - 0.001
    # All of the click, once: 15 ms of loud sound at most 2 frames long. Over the microphone's own tone
    # (0.3 of full scale, any phase) 285 to 392 of the click's 720 samples pass 0.6, and the loud ones
    # span 683 to 715 samples from first to last.
    assert 1 <= len(with_click) <= 2
    assert sum(idx.size for _, _, idx in with_click) > 250
    loud_at = np.concatenate([f.pts + idx for f, _, idx in with_click])
    assert 660 <= loud_at[-1] - loud_at[0] + 1 <= 720


def test_microphone_stop_ends_track():
    track = SyntheticMicrophoneTrack()
    grab(track, 1)
    track.stop()
    assert track.readyState == "ended"
    with pytest.raises(MediaStreamError):
        grab(track, 1)
