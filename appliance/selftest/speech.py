"""A speech-like test voice: voiced syllables with vibrato, consonants, pauses.

An echo canceller and a noise suppressor treat it as speech, not as a tone or noise, so it stands in
for the clerk and the citizen wherever a voice is needed without a recording: the echo tests and
``bench --only echo`` (bench/_echo_room.py), and the boot test's voices in the guest and at the
clerk's browser (image/build/selftest/loopback_audio.py, image/build/clerk-call.py). Generated from a
seed, so every run hears the same voice.
"""
from __future__ import annotations

import numpy as np

RATE = 48000


def speech_like(seconds: float, seed: int, pitch: tuple[float, float] = (100, 220), rate: int = RATE) -> np.ndarray:
    """``seconds`` of voice as floats, RMS 1 while it sounds (peaks ~14 dB above; scale before use)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    out = np.zeros(n)
    pos = 0
    while pos < n:
        length = min(int(rng.uniform(0.12, 0.3) * rate), n - pos)
        t = np.arange(pos, pos + length) / rate
        f0 = rng.uniform(*pitch) * (1 + 0.08 * np.sin(2 * np.pi * 4 * t))
        phase = 2 * np.pi * np.cumsum(f0) / rate
        voiced = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 16))
        envelope = np.sin(np.pi * np.arange(length) / length) ** 2
        out[pos:pos + length] = voiced * envelope * rng.uniform(0.4, 1.0)  # syllables differ in loudness
        if rng.random() < 0.4:  # a fricative after some syllables: band-limited noise
            hiss = min(int(0.06 * rate), n - pos - length)
            if hiss > 0:
                noise = np.convolve(rng.normal(0, 1, hiss), np.ones(4) / 4, "same")
                out[pos + length:pos + length + hiss] = 0.3 * noise * np.hanning(hiss)
        pos += length + int(rng.uniform(0.03, 0.15) * rate)
    return out / np.sqrt(np.mean(out[np.abs(out) > 1e-3] ** 2))


def with_peak(voice: np.ndarray, peak: float) -> np.ndarray:
    """The voice scaled so that its loudest sample is ``peak`` (of full scale)."""
    return peak * voice / np.abs(voice).max()
