"""The clocks of speaker and microphone: their ratio is found from the devices' sample counts, and the
far end is resampled onto the microphone's clock without a step (appliance/hardware/drift.py)."""
import numpy as np
import pytest

from appliance.hardware.drift import ClockRatio, Resampler

SR = 48000
FRAME = 960


def feed(ratio: ClockRatio, ppm: float, seconds: float, *, jitter_s: float = 0.004, seed: int = 0,
         start: float = 0.0) -> None:
    """Both devices run for ``seconds``: the speaker at 48 kHz, the microphone ``ppm`` faster; every
    report comes late by up to ``jitter_s`` (the threads' scheduling)."""
    rng = np.random.default_rng(seed)
    mic_rate = SR * (1 + ppm * 1e-6)
    spk = mic = 0
    while spk * FRAME / SR < seconds:
        if spk * FRAME / SR <= (mic + 1) * FRAME / mic_rate:
            ratio.speaker(spk * FRAME, start + spk * FRAME / SR + rng.uniform(0, jitter_s))
            spk += 1
        else:
            ratio.microphone(FRAME, start + (mic + 1) * FRAME / mic_rate + rng.uniform(0, jitter_s))
            mic += 1


@pytest.mark.parametrize("ppm", [200.0, -150.0, 60.0])
def test_the_clock_ratio_is_found_within_a_few_ppm(ppm):
    clocks = ClockRatio()
    feed(clocks, ppm, 30)
    assert clocks.ppm == pytest.approx(ppm, abs=15)
    assert clocks.estimate_ppm == pytest.approx(ppm, abs=8)


def test_equal_clocks_leave_the_far_end_alone():
    clocks = ClockRatio()
    feed(clocks, 0.0, 30)
    assert clocks.ratio == 1.0  # the fit wanders by a few ppm; the canceller is not made to chase that


def test_a_pause_between_calls_keeps_the_ratio_and_does_not_bend_the_fit():
    clocks = ClockRatio()
    feed(clocks, 200.0, 20)
    found = clocks.ppm
    feed(clocks, 200.0, 20, start=60.0, seed=1)  # the next call, 40 s later, counts on from where it was
    assert found == pytest.approx(200, abs=15)
    assert clocks.ppm == pytest.approx(200, abs=15)


def test_a_stalled_stream_is_not_taken_for_a_clock():
    clocks = ClockRatio()
    for k in range(1500):  # the speaker's device stands still at 10 s (its count stops), the microphone runs on
        now = k * FRAME / SR
        clocks.speaker(min(k, 500) * FRAME, now)
        clocks.microphone(FRAME, now)
    assert clocks.ratio == 1.0


def test_resampling_by_the_ratio_stretches_a_tone_without_steps():
    ratio = 1 + 200e-6
    resample = Resampler(ratio)
    n = np.arange(10 * SR)
    tone = np.round(10000 * np.sin(2 * np.pi * 1000 * n / SR)).astype(np.int16)
    blocks = [resample(tone[i:i + size]) for i, size in zip(range(0, n.size, 700), [700] * (n.size // 700 + 1))]
    out = np.concatenate(blocks).astype(np.float64)
    assert abs(out.size - n.size * ratio) <= 2
    m = np.arange(10, out.size - 10)
    expected = 10000 * np.sin(2 * np.pi * 1000 * ((m - 2) / ratio) / SR)  # two samples of filter delay
    error = out[10:-10] - expected
    assert 10 * np.log10(np.mean(error ** 2) / np.mean(expected ** 2)) < -60


def test_a_ratio_change_continues_the_phase():
    resample = Resampler(1.0)
    ramp = np.arange(0, 20000, 2, dtype=np.int16)  # a straight line: any step would show
    first = resample(ramp[:5000])
    resample.ratio = 1 + 500e-6
    second = resample(ramp[5000:])
    joined = np.concatenate((first, second)).astype(np.int64)
    steps = np.diff(joined[5:-5])
    assert steps.min() >= 1 and steps.max() <= 2  # 2 per sample, a little less once stretched
