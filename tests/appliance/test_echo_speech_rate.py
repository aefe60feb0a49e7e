"""The echo canceller on a unit too slow for 48 kHz: it goes on at 16 kHz (speech's band) and still removes the
echo, and it judges by its own CPU per second of sound, not by one slow moment."""
import functools
import logging

import numpy as np
import pytest

from appliance.hardware.echo import CPU_BUDGET, SAMPLE_RATE, EchoCanceller
from appliance.hardware.echo_rate import SPEECH_RATE
from appliance.hardware.errors import DeviceUsageError
from appliance.hardware.limiter import SoftLimiter
from bench._echo_room import CONDITIONS, Figures, measure
from tests.appliance.test_echo import ERLE_TARGET_DB, NEAR_END_LOSS_TARGET_DB

FRAME = 960  # 20 ms


@functools.cache
def figures(name: str) -> Figures:
    condition = next(c for c in CONDITIONS if c.name == name)
    found = measure(condition, lambda clock: EchoCanceller(clock=clock, rate=SPEECH_RATE), limiter=SoftLimiter)
    print(f"\n{name} at 16 kHz: ERLE {found.erle_db:.1f} dB (worst room {found.worst_erle_db:.1f} dB), "
          f"near-end loss in double talk {found.near_end_loss_db:.1f} dB")
    return found


@pytest.mark.parametrize("name", [c.name for c in CONDITIONS])
def test_at_16_khz_the_clerk_does_not_hear_their_own_echo(name):
    assert figures(name).erle_db >= ERLE_TARGET_DB


@pytest.mark.parametrize("name", [c.name for c in CONDITIONS])
def test_at_16_khz_the_citizen_is_heard_while_the_clerk_talks(name):
    assert figures(name).near_end_loss_db <= NEAR_END_LOSS_TARGET_DB


class CpuClock:
    """The canceller's thread CPU, as if each 20 ms frame took ``per_frame_s``."""

    def __init__(self, per_frame_s: float) -> None:
        self.per_frame_s, self.now, self._calls = per_frame_s, 0.0, 0

    def __call__(self) -> float:
        self._calls += 1
        if self._calls % 2 == 0:  # read before and after each frame's work
            self.now += self.per_frame_s
        return self.now


def run(canceller: EchoCanceller, seconds: float) -> list[np.ndarray]:
    voice = (np.sin(2 * np.pi * 440 * np.arange(FRAME) / SAMPLE_RATE) * 6000).astype(np.int16)
    out = []
    for _ in range(int(seconds * 50)):
        canceller.far_end(voice)
        out.append(canceller.process(voice // 4))
    return out


def test_a_canceller_too_slow_for_48_khz_goes_on_at_16_khz_and_says_so(caplog):
    # 0.012 s of CPU per 20 ms frame: 0.6 s per second of sound, over the budget.
    canceller = EchoCanceller(thread_time=CpuClock(0.012))
    try:
        with caplog.at_level(logging.WARNING, logger="appliance.hardware.echo"):
            out = run(canceller, 4.9)
            assert canceller.rate == SAMPLE_RATE  # judged over 5 s of sound, not on a moment
            out += run(canceller, 0.2)
        assert canceller.rate == SPEECH_RATE
        assert "0.60 s of CPU per second of sound at 48000 Hz" in caplog.text
        assert "goes on at 16000 Hz" in caplog.text and "lower the camera's size or rate" in caplog.text
        assert all(frame.shape == (FRAME,) and frame.dtype == np.int16 for frame in out)  # the call still gets 48 kHz
        assert "cancelling at 16 kHz" in canceller.streams_line()
        run(canceller, 6)
        assert canceller.rate == SPEECH_RATE  # and stays there: no going back and forth
    finally:
        canceller.close()


def test_a_canceller_within_its_budget_stays_at_48_khz():
    canceller = EchoCanceller(thread_time=CpuClock(0.02 * CPU_BUDGET * 0.9))
    try:
        run(canceller, 11)
        assert canceller.rate == SAMPLE_RATE
        assert "kHz" not in canceller.streams_line()
    finally:
        canceller.close()


def test_a_rate_set_in_the_settings_is_kept_however_slow():
    canceller = EchoCanceller(rate=SAMPLE_RATE, thread_time=CpuClock(0.03))
    try:
        run(canceller, 11)
        assert canceller.rate == SAMPLE_RATE
    finally:
        canceller.close()


def test_a_rate_aec3_cannot_take_is_refused():
    with pytest.raises(DeviceUsageError, match="48000 or 16000 Hz, not 44100"):
        EchoCanceller(rate=44100)
