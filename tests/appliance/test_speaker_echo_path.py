"""What the ALSA speaker (appliance/hardware/pi/audio.py) tells the echo canceller: the samples as played,
after the soft limiter, and how far its device has played, for the canceller's clock estimate."""
from __future__ import annotations

import asyncio

import av
import numpy as np
import pytest

pytest.importorskip("alsaaudio", reason="pyalsaaudio not installed (pip install pyalsaaudio)")

from appliance.hardware.limiter import DEFAULT_CEILING_DBFS  # noqa: E402
from appliance.hardware.pi.audio import CUSHION, PERIOD, PERIODS, AlsaSpeaker  # noqa: E402

DEVICE = "plughw:CARD=kioskaudio"
CARDS = (" 2 [kioskaudio     ]: USB-Audio - Jabra SPEAK 410 USB\n"
         "                      Jabra SPEAK 410 USB at usb-0000:01:00.0-1.3, full speed\n")


class QueueingPcm:
    """A playback handle with an 80 ms buffer that holds ``queued`` frames; ``underrun_next`` makes the
    next write fail as an underrun does (-EPIPE; pyalsaaudio re-prepares the device)."""

    def __init__(self):
        self.written = bytearray()
        self.queued = 0
        self.underrun_next = False

    def write(self, data: bytes) -> int:
        if self.underrun_next:
            self.underrun_next = False
            self.queued = 0
            return -32
        self.written += data
        self.queued = min(PERIOD * PERIODS, self.queued + len(data) // 2)
        return len(data) // 2

    def avail(self) -> int:
        return PERIOD * PERIODS - self.queued

    def close(self):
        pass


@pytest.fixture
def speaker(tmp_path):
    (tmp_path / "cards").write_text(CARDS)
    pcm = QueueingPcm()
    speaker = AlsaSpeaker(DEVICE, open_pcm=lambda kind, device, periods: pcm, proc=tmp_path)
    speaker.pcm = pcm
    yield speaker
    speaker.close()


def frame(peak: int) -> av.AudioFrame:
    tone = np.round(peak * np.sin(2 * np.pi * 440 * np.arange(960) / 48000)).astype(np.int16)
    out = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="s16", layout="mono")
    out.sample_rate = 48000
    return out


async def test_the_canceller_gets_the_limited_samples_that_are_played(speaker):
    heard = []
    speaker.far_end = lambda f: heard.append(f.to_ndarray().reshape(-1).copy())
    await speaker.play(frame(32000))  # a loud clerk at full scale
    played = np.frombuffer(bytes(speaker.pcm.written), np.int16)
    assert np.array_equal(np.concatenate(heard), played)  # the cushion of silence, then the frame
    assert not played[:CUSHION].any()
    assert np.abs(played.astype(int)).max() <= 32767 * 10 ** (DEFAULT_CEILING_DBFS / 20)
    await speaker.play(frame(32000))  # the next frame, levelled down by then: still the same samples
    assert np.array_equal(heard[-1], np.frombuffer(bytes(speaker.pcm.written), np.int16)[CUSHION + 960:])


async def test_ordinary_speech_is_played_as_it_comes(speaker):
    heard = []
    speaker.far_end = lambda f: heard.append(f.to_ndarray().reshape(-1).copy())
    for _ in range(3):
        await speaker.play(frame(4000))
    played = np.concatenate(heard)
    assert played.size == CUSHION + 3 * 960 and not played[:CUSHION].any()  # the cushion of silence, then ...
    assert all(np.array_equal(h, frame(4000).to_ndarray().reshape(-1)) for h in heard[1:])  # each frame unchanged


async def test_after_an_underrun_the_canceller_hears_the_silence_in_the_order_the_device_plays_it(speaker):
    heard, silences = [], []
    speaker.far_end = lambda f: heard.append(f.to_ndarray().reshape(-1).copy())
    speaker.silence_hook = silences.append
    await speaker.play(frame(4000))
    await asyncio.sleep(0.15)  # its 80 ms buffer has played out ...
    speaker.pcm.underrun_next = True  # ... and the device ran dry before the next frame came
    await speaker.play(frame(4000))
    played = np.frombuffer(bytes(speaker.pcm.written), np.int16)
    # Not the frame and then the cushion: the cushion the device plays first, then the frame.
    assert np.array_equal(np.concatenate(heard), played)
    assert played.size == 2 * (CUSHION + 960) and not played[CUSHION + 960:2 * CUSHION + 960].any()
    # And how long it stood silent unasked: at its first start for a time nobody measured (None), after the
    # underrun from when its 80 ms of buffer ran out until the next write.
    assert len(silences) == 2 and silences[0] is None and 0.05 * 48000 <= silences[1] < 48000


async def test_the_canceller_learns_how_far_the_device_has_played(speaker):
    reports = []
    speaker.position_hook = lambda played, restart: reports.append((played, restart))
    for _ in range(6):
        await speaker.play(frame(1000))
    # the cushion and 6 frames written, the last 4 periods still in the 80 ms buffer
    assert reports[-1] == (CUSHION + 6 * 960 - PERIOD * PERIODS, False)
    speaker.pcm.underrun_next = True
    await speaker.play(frame(1000))
    # the device stood still (the canceller starts a new fit) and gets a new cushion ahead of the frame
    assert reports[-1] == (2 * CUSHION + 7 * 960 - (CUSHION + 960), True)


def test_a_wrong_limit_stops_start_up_with_what_is_allowed(tmp_path):
    (tmp_path / "cards").write_text(CARDS)
    with pytest.raises(ValueError, match="limit_dbfs must be a number from -20 to 0"):
        AlsaSpeaker(DEVICE, limit_dbfs=6, open_pcm=lambda kind, device, periods: QueueingPcm(), proc=tmp_path)
