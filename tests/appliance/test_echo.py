"""Echo cancellation in a simulated room: the clerk must not hear themselves."""
import av
import numpy as np
import pytest

from appliance.hardware.echo import CHUNK, SAMPLE_RATE, EchoCanceller

SR = SAMPLE_RATE
FRAME = 960  # the microphone's 20 ms frames
SECONDS = 16
FAR_PAUSE = (3.0, 6.0)      # the clerk is silent ...
LOCAL_TALK = (4.0, 5.5)     # ... while the citizen speaks
DOUBLE_TALK = (9.0, 11.0)    # both at once; over before the measured last 5 s


def speech_like(seconds: float, seed: int, pitch=(100, 220)) -> np.ndarray:
    """Voiced syllables (harmonics with vibrato under a syllable envelope) and noisy consonants."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n)
    pos = 0
    while pos < n:
        length = min(int(rng.uniform(0.12, 0.3) * SR), n - pos)
        t = np.arange(pos, pos + length) / SR
        f0 = rng.uniform(*pitch) * (1 + 0.08 * np.sin(2 * np.pi * 4 * t))
        phase = 2 * np.pi * np.cumsum(f0) / SR
        voiced = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 16))
        envelope = np.sin(np.pi * np.arange(length) / length) ** 2
        out[pos:pos + length] = voiced * envelope
        if rng.random() < 0.4:  # a fricative after some syllables: band-limited noise
            hiss = min(int(0.06 * SR), n - pos - length)
            if hiss > 0:
                noise = np.convolve(rng.normal(0, 1, hiss), np.ones(4) / 4, "same")
                out[pos + length:pos + length + hiss] = 0.3 * noise * np.hanning(hiss)
        pos += length + int(rng.uniform(0.03, 0.15) * SR)
    return 0.5 * out / np.abs(out).max()


def room_echo(far: np.ndarray, delay_s: float, seed: int) -> np.ndarray:
    """What the microphone picks up of the speaker: delayed, coloured, reverberant."""
    rng = np.random.default_rng(seed)
    taps = int(0.06 * SR)
    ir = rng.normal(0, 1, taps) * np.exp(-np.arange(taps) / (0.012 * SR)) * 0.15
    ir[0] += 0.5  # direct path from speaker to microphone
    ir = np.convolve(ir, np.ones(3) / 3)  # the small speaker's treble roll-off
    echo = np.convolve(far, ir)[:far.size]
    return np.concatenate((np.zeros(int(delay_s * SR)), echo))[:far.size]


def i16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)


def energy(x: np.ndarray) -> float:
    return float(np.sum(x.astype(np.float64) ** 2))


def run_room(delay_s: float):
    far = speech_like(SECONDS, seed=1)
    far[int(FAR_PAUSE[0] * SR):int(FAR_PAUSE[1] * SR)] = 0
    local = np.zeros_like(far)
    a, b = int(LOCAL_TALK[0] * SR), int(LOCAL_TALK[1] * SR)
    local[a:b] = 0.6 * speech_like(LOCAL_TALK[1] - LOCAL_TALK[0], seed=7, pitch=(180, 260))
    a, b = int(DOUBLE_TALK[0] * SR), int(DOUBLE_TALK[1] * SR)
    local[a:b] = 0.6 * speech_like(DOUBLE_TALK[1] - DOUBLE_TALK[0], seed=8, pitch=(180, 260))
    noise = np.random.default_rng(3).normal(0, 0.001, far.size)  # ~ -60 dBFS room and preamp noise
    echo = room_echo(far, delay_s, seed=2)
    near = i16(echo + local + noise)
    far = i16(far)

    canceller = EchoCanceller()  # default delay hint (120 ms), not the true delay: AEC3 must find it
    out = np.empty_like(near)
    try:
        for start in range(0, near.size - FRAME + 1, FRAME):
            # Real-time order: a speaker frame is played, then a microphone frame is captured.
            canceller.far_end(far[start:start + FRAME])
            out[start:start + FRAME] = canceller.process(near[start:start + FRAME])
    finally:
        canceller.close()
    return near, out, i16(local)


@pytest.mark.parametrize("delay_ms", [80, 180, 250])
def test_echo_is_cancelled_and_the_citizen_is_not(delay_ms):
    near, out, local = run_room(delay_ms / 1000)
    last = slice(near.size - 5 * SR, near.size)  # converged: the last 5 s, echo only
    erle = 10 * np.log10(energy(near[last]) / max(energy(out[last]), 1.0))
    talk = slice(int(LOCAL_TALK[0] * SR), int(LOCAL_TALK[1] * SR))
    kept = 10 * np.log10(energy(out[talk]) / energy(local[talk]))
    both = slice(int(DOUBLE_TALK[0] * SR), int(DOUBLE_TALK[1] * SR))
    kept_both = 10 * np.log10(energy(out[both]) / energy(local[both]))
    print(f"\nroom delay {delay_ms} ms: ERLE {erle:.1f} dB over the last 5 s; citizen's speech "
          f"{kept:+.1f} dB alone, {kept_both:+.1f} dB while the clerk talks too")
    assert erle >= 20
    assert kept > -6  # the citizen's voice goes through
    assert kept_both > -12  # and is not muted in double talk (a half-duplex suppressor would)


def test_far_end_any_length_and_format_checks():
    canceller = EchoCanceller()
    try:
        canceller.far_end(np.zeros(1234, np.int16))  # not a multiple of 10 ms: the rest waits for more
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.int16), format="s16", layout="mono")
        frame.sample_rate = SR
        canceller.far_end(frame)
        stereo = av.AudioFrame.from_ndarray(np.zeros((1, 1920), np.int16), format="s16", layout="stereo")
        stereo.sample_rate = SR
        with pytest.raises(ValueError, match="48 kHz mono s16"):
            canceller.far_end(stereo)
        with pytest.raises(ValueError, match="multiple of 480"):
            canceller.process(np.zeros(500, np.int16))
        assert canceller.process(np.zeros(2 * CHUNK, np.int16)).shape == (2 * CHUNK,)
    finally:
        canceller.close()
    loud = np.full(CHUNK, 1000, np.int16)
    assert np.array_equal(canceller.process(loud), loud)  # after close: passes audio through


def test_bypassed_canceller_passes_the_microphone_unchanged():
    # The self-test turns cancellation off so that its tone, played on the speaker, is heard as it is.
    tone = (np.sin(2 * np.pi * 1000 * np.arange(FRAME) / SR) * 8000).astype(np.int16)
    canceller = EchoCanceller()
    try:
        canceller.bypassed = True
        for _ in range(50):
            canceller.far_end(tone)
            assert np.array_equal(canceller.process(tone), tone)
        canceller.bypassed = False
        assert not np.array_equal(canceller.process(tone), tone)  # back on: processed again
    finally:
        canceller.close()
