"""Real pyalsaaudio calls against ALSA's software devices (no sound card needed).

``null`` accepts playback and delivers capture periods at once; the ALSA
``file`` plugin reading ``infile`` gives capture whose content is known.
"""
import asyncio
import fractions
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import av
import numpy as np
import pytest

from appliance.hardware.errors import AudioDeviceError, HardwareError
from protocol.errors import AmtsklingelError

alsaaudio = pytest.importorskip("alsaaudio", reason="pyalsaaudio not installed (pip install pyalsaaudio)")

from appliance.hardware.echo import EchoCanceller  # noqa: E402
from appliance.hardware.pi.audio import CUSHION, AlsaMicrophone, AlsaSpeaker  # noqa: E402


def audio_frame(samples: np.ndarray, layout: str, rate: int, fmt: str = "s16") -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(samples, format=fmt, layout=layout)
    frame.sample_rate = rate
    return frame


async def test_capture_from_null_gives_20ms_frames_in_real_time():
    mic = AlsaMicrophone("null")
    track = mic.track()
    try:
        started = time.monotonic()
        frames = [await asyncio.wait_for(track.recv(), 2) for _ in range(30)]
        elapsed = time.monotonic() - started
    finally:
        mic.close()
    for i, frame in enumerate(frames):
        assert (frame.samples, frame.sample_rate, frame.format.name, frame.layout.name) == (960, 48000, "s16", "mono")
        assert frame.to_ndarray().shape == (1, 960)
        assert frame.time_base == fractions.Fraction(1, 48000)
        assert frame.pts == i * 960
    # null has no clock: capture paces itself, so 30 frames take ~0.6 s, not 0.
    assert 0.3 < elapsed < 3
    assert track.readyState == "ended"


async def test_capture_with_echo_canceller_and_a_new_track_per_call():
    echo = EchoCanceller()
    mic = AlsaMicrophone("null", echo=echo)
    try:
        first = mic.track()
        assert (await asyncio.wait_for(first.recv(), 2)).samples == 960
        second = mic.track()  # the next call: the previous track ends
        assert first.readyState == "ended"
        assert (await asyncio.wait_for(second.recv(), 2)).samples == 960
    finally:
        mic.close()
        echo.close()


async def test_a_canceller_falling_behind_in_the_appliance_s_process_is_counted_as_for_the_microphone_s_own():
    from appliance.fleet.devices import DeviceBook, count_echo_behind
    from tests.appliance.slow_capture_process import SlowCanceller
    from tests.polling import until
    echo, book = SlowCanceller(), DeviceBook()
    mic = AlsaMicrophone("null", echo=echo)
    assert count_echo_behind(mic, book)
    try:
        track = mic.track()
        assert (await asyncio.wait_for(track.recv(), 2)).samples == 960
        await until(lambda: book.recent_faults(), seconds=30, what="the skip counted")
        assert book.snapshot()["microphone"].state == "unknown"  # counted only: the call decides whether it works
        [fault] = book.recent_faults()
        assert (fault.code, fault.device) == ("echo_behind", "microphone")
    finally:
        mic.close()
        echo.close()


async def test_playback_to_null_accepts_frames_of_any_format():
    heard = []
    speaker = AlsaSpeaker("null", far_end=heard.append)
    try:
        t = np.arange(960) / 48000
        tone = (np.sin(2 * np.pi * 440 * t) * 3000).astype(np.int16)  # ordinary speech level: not levelled down
        # What aiortc's Opus decoder yields (48 kHz stereo s16, interleaved) ...
        await speaker.play(audio_frame(np.repeat(tone, 2).reshape(1, -1), "stereo", 48000))
        # ... what the mic gives, and something exotic (16 kHz float planar).
        await speaker.play(audio_frame(tone.reshape(1, -1), "mono", 48000))
        for _ in range(5):
            await speaker.play(audio_frame(np.zeros((1, 320), np.float32), "mono", 16000, "fltp"))
    finally:
        speaker.close()
    # a cushion of silence first (the device must not run dry at the first late frame), then the frames
    # (and, as the null device plays at once, the cushion again after each frame: _top_up)
    assert CUSHION + 960 * 2 <= speaker.frames_played - speaker.topped_up <= CUSHION + 960 * 2 + 5 * 960
    assert all((f.format.name, f.layout.name, f.sample_rate) == ("s16", "mono", 48000) for f in heard)
    assert sum(f.samples for f in heard) == speaker.frames_played  # the canceller sees all that was played
    played = np.concatenate([f.to_ndarray().reshape(-1) for f in heard])
    assert not played[:CUSHION].any()
    assert any(np.array_equal(f.to_ndarray().reshape(-1), tone) for f in heard)  # mono 48 kHz passes unchanged


async def test_closed_speaker_refuses():
    speaker = AlsaSpeaker("null")
    speaker.close()
    speaker.close()
    with pytest.raises(AudioDeviceError):
        await speaker.play(audio_frame(np.zeros((1, 960), np.int16), "mono", 48000))


async def test_missing_device_is_a_clear_error():
    with pytest.raises(AudioDeviceError, match="no_such_card") as caught:
        AlsaSpeaker("no_such_card")
    assert isinstance(caught.value, HardwareError) and isinstance(caught.value, OSError)
    assert isinstance(caught.value, AmtsklingelError)
    with pytest.raises(AudioDeviceError, match="capture device 'no_such_card'"):
        AlsaMicrophone("no_such_card").track()


CAPTURE_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    import numpy as np
    from appliance.hardware.pi.audio import AlsaMicrophone

    async def main():
        mic = AlsaMicrophone(sys.argv[1])
        track = mic.track()
        frames = [await asyncio.wait_for(track.recv(), 2) for _ in range(12)]
        mic.close()
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
        print(len(frames), frames[0].samples, samples.size, int(np.abs(samples).max()),
              int((np.diff(samples.astype(np.int64)) % 1000 == 1).all()))

    asyncio.run(main())
""")


@pytest.mark.parametrize("infile,expect_max,expect_ramp", [("/dev/zero", 0, 0), ("ramp", 999, 1)])
def test_capture_content_through_the_file_plugin(tmp_path, infile, expect_max, expect_ramp):
    # null leaves the capture buffer untouched (alsa-lib passes it no areas), so
    # its content is whatever pyalsaaudio's fresh buffer held.  The file plugin
    # fills it from "infile": silence from /dev/zero, or a known ramp.  It needs
    # its own ALSA configuration, hence a separate process.
    if infile == "ramp":
        infile = tmp_path / "ramp.raw"
        (np.arange(48000) % 1000).astype("<i2").tofile(infile)
    conf = tmp_path / "asound.conf"
    conf.write_text(f'</usr/share/alsa/alsa.conf>\npcm.source {{ type file slave.pcm null file "/dev/null" '
                    f'infile "{infile}" format "raw" }}\n')
    env = dict(os.environ, ALSA_CONFIG_PATH=str(conf))
    done = subprocess.run([sys.executable, "-c", CAPTURE_SCRIPT, "source"], env=env, capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    frames, per_frame, total, peak, ramp = map(int, done.stdout.split())
    assert (frames, per_frame, total) == (12, 960, 12 * 960)
    assert peak == expect_max  # silence is exactly zero; the ramp arrives intact
    assert ramp == expect_ramp  # and in order, sample after sample
