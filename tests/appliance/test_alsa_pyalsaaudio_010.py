"""The ALSA speaker and microphone (appliance/hardware/pi/audio.py) with the image's pyalsaaudio: Debian
trixie ships 0.10, which raises ALSAAudioError ("Broken pipe") on an underrun where 0.11 returns -32,
and has no ``avail()``. An underrun is not an unplugged device: the clerk's voice must go on.

The PCM handles are stand-ins that behave as 0.10's do (appliance/hardware/pi/alsa_pcm.py says how).
"""
from __future__ import annotations

import asyncio
import logging
import time

import av
import numpy as np
import pytest

alsaaudio = pytest.importorskip("alsaaudio", reason="pyalsaaudio not installed (pip install pyalsaaudio)")

from appliance.hardware.pi.audio import CUSHION, PERIOD, AlsaMicrophone, AlsaSpeaker  # noqa: E402

DEVICE = "plug:'dmix:CARD=Loopback,DEV=0,FORMAT=S16_LE'"
CARDS = " 0 [Loopback       ]: Loopback - Loopback\n                      Loopback 1\n"


class Pcm010:
    """A handle as pyalsaaudio 0.10 gives it: an underrun raises (and leaves the device in XRUN until
    the next call prepares it), the free space is in ``htimestamp()``, the sizes in ``info()``."""

    def __init__(self, period=1024, buffer=4096):
        self.period, self.buffer = period, buffer
        self.written = bytearray()
        self.queued = 0
        self.xrun_next = self.xrun = False
        self.reads = 0

    def info(self) -> dict:
        return {"period_size": self.period, "buffer_size": self.buffer}

    def state(self) -> int:
        return alsaaudio.PCM_STATE_XRUN if self.xrun else alsaaudio.PCM_STATE_RUNNING

    def write(self, data: bytes) -> int:
        self.xrun = False  # 0.10 prepares a device in XRUN before writing
        if self.xrun_next:
            self.xrun_next, self.xrun, self.queued = False, True, 0
            raise alsaaudio.ALSAAudioError(f"Broken pipe [{DEVICE}]")
        self.written += data
        self.queued = min(self.buffer, self.queued + len(data) // 2)
        return len(data) // 2

    def read(self):
        self.reads += 1
        if self.reads == 3:  # an overrun
            self.xrun = True
            raise alsaaudio.ALSAAudioError(f"Broken pipe [{DEVICE}]")
        self.xrun = False
        time.sleep(self.period / 48000)  # a sound card's clock
        return self.period, np.full(self.period, 1000, np.int16).tobytes()

    def htimestamp(self):
        return 0, 0, self.buffer - self.queued

    def close(self):
        pass


def frame() -> av.AudioFrame:
    out = av.AudioFrame.from_ndarray(np.full((1, 960), 1000, np.int16), format="s16", layout="mono")
    out.sample_rate = 48000
    return out


@pytest.fixture
def proc(tmp_path):
    (tmp_path / "cards").write_text(CARDS)
    return tmp_path


async def test_an_underrun_is_not_a_failed_speaker_and_the_voice_goes_on(proc):
    pcm = Pcm010()
    reports = []
    speaker = AlsaSpeaker(DEVICE, open_pcm=lambda kind, device, periods: pcm, proc=proc)
    speaker.position_hook = lambda played, restart: reports.append((played, restart))
    try:
        for _ in range(3):
            await speaker.play(frame())
        pcm.xrun_next = True
        await speaker.play(frame())  # no AudioDeviceError
        await speaker.play(frame())
    finally:
        speaker.close()
    written = np.frombuffer(bytes(pcm.written), np.int16)
    # silence ahead of the first frame, and again ahead of the frame the underrun interrupted
    expected = np.concatenate([np.zeros(CUSHION), np.full(3 * 960, 1000), np.zeros(CUSHION), np.full(2 * 960, 1000)])
    assert np.array_equal(written, expected)
    assert speaker.frames_played == written.size
    assert speaker.underruns == 1
    # how far the device played, from 0.10's htimestamp(); the canceller learns of the standstill
    assert reports[2] == (CUSHION + 3 * 960 - 4096, False)
    assert reports[3][1] is True and reports[4] == (written.size - (CUSHION + 2 * 960), False)


async def test_an_overrun_does_not_end_the_microphones_track(proc):
    pcm = Pcm010()

    class Canceller:  # the echo canceller learns how much captured sound was lost
        lost: list[int] = []

        def process(self, samples):
            return samples

        def microphone_lost(self, samples):
            self.lost.append(samples)

    echo = Canceller()
    mic = AlsaMicrophone(DEVICE, echo=echo, open_pcm=lambda kind, device, periods: pcm, proc=proc)
    try:
        track = mic.track()
        frames = [await asyncio.wait_for(track.recv(), 2) for _ in range(8)]
        assert all(f.samples == PERIOD for f in frames)  # dsnoop's 1024-frame periods, sent as 20 ms frames
        assert mic.error is None and track.readyState == "live"
        assert pcm.reads > 3
        # Two periods read, the third overran: what waited of a 20 ms frame is lost with it.
        assert mic.overruns == 1 and len(echo.lost) == 1 and 2 * 1024 - 2 * PERIOD <= echo.lost[0] < 48000
    finally:
        mic.close()


def test_the_journal_says_which_period_and_buffer_alsa_gave(caplog):
    from appliance.hardware.pi.alsa_pcm import close_quietly, open_pcm

    with caplog.at_level(logging.INFO, logger="appliance.hardware.pi.alsa_pcm"):
        for kind in ("playback", "capture"):
            close_quietly(open_pcm(kind, "null", 4 if kind == "playback" else 16))  # ALSA's null device
    assert "ALSA playback 'null': period 960 frames (20.0 ms), buffer 3840 frames (80.0 ms)" in caplog.text
    assert "ALSA capture 'null': period 960 frames (20.0 ms), buffer 15360 frames (320.0 ms)" in caplog.text


async def test_a_longer_cushion_gets_a_buffer_that_holds_it(proc):
    opened = []
    speaker = AlsaSpeaker(DEVICE, cushion_ms=200, open_pcm=lambda kind, device, periods: opened.append(periods) or Pcm010(),
                          proc=proc)
    try:
        await speaker.play(frame())
    finally:
        speaker.close()
    assert speaker.cushion == 9600 and opened == [12]  # 200 ms, and a buffer of 240 ms
    assert speaker.frames_played == 9600 + 960
    with pytest.raises(ValueError, match="cushion_ms must be a number from 0 to 500"):
        AlsaSpeaker(DEVICE, cushion_ms=2000, open_pcm=lambda kind, device, periods: Pcm010(), proc=proc)
