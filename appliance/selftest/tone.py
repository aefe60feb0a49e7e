"""The self-test's tone: made for the speaker, looked for in what the microphone hears."""
from __future__ import annotations

import fractions

import av
import numpy as np

RATE = 48000
FRAME_SAMPLES = 960          # 20 ms, the size every audio path of the unit uses
TONE_HZ = 1000.0             # well inside what small speakers and USB microphones handle
TONE_LEVEL = 0.25            # of full scale: clearly audible in a hall, not startling
WINDOW = 2048                # ~43 ms analysis windows: 23 Hz bins, fine enough to tell 1 kHz from speech
HEARD_RATIO = 8.0            # the tone's band must be 9 dB above what it was before the tone
MIN_TONE_RMS = 30.0          # and above the noise floor of a 16-bit converter


def tone_frames(seconds: float, *, frequency: float = TONE_HZ, level: float = TONE_LEVEL) -> list[av.AudioFrame]:
    """``seconds`` of a sine tone as 20 ms mono s16 frames, faded in and out so it does not click."""
    count = int(seconds * RATE) // FRAME_SAMPLES * FRAME_SAMPLES
    n = np.arange(count)
    signal = np.sin(2 * np.pi * frequency * n / RATE) * level * 32767
    fade = min(count // 2, RATE // 100)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        signal[:fade] *= ramp
        signal[count - fade:] *= ramp[::-1]
    samples = signal.astype(np.int16)
    frames = []
    for start in range(0, count, FRAME_SAMPLES):
        frame = av.AudioFrame.from_ndarray(samples[start:start + FRAME_SAMPLES].reshape(1, -1), format="s16",
                                           layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, start, fractions.Fraction(1, RATE)
        frames.append(frame)
    return frames


def band_rms(samples: np.ndarray, frequency: float = TONE_HZ) -> float:
    """How loud ``frequency`` is in ``samples`` (RMS of that component, in sample units)."""
    samples = np.asarray(samples, np.float64).reshape(-1)
    if samples.size < WINDOW:
        return 0.0
    window = np.hanning(WINDOW)
    probe = window * np.exp(-2j * np.pi * frequency * np.arange(WINDOW) / RATE)
    powers = [abs(np.dot(samples[i:i + WINDOW], probe)) ** 2
              for i in range(0, samples.size - WINDOW + 1, WINDOW // 2)]
    # |X|^2 of a sine of amplitude A under a Hann window is (A * sum(w) / 2)^2; RMS = A / sqrt(2)
    amplitude = 2 * np.sqrt(np.mean(powers)) / window.sum()
    return float(amplitude / np.sqrt(2))


def tone_heard(before: np.ndarray, during: np.ndarray, frequency: float = TONE_HZ) -> bool:
    """Did the microphone hear the tone: clearly louder in its band than before it was played."""
    quiet, loud = band_rms(before, frequency), band_rms(during, frequency)
    return loud >= MIN_TONE_RMS and loud >= HEARD_RATIO * max(quiet, 1.0)


def level(samples: np.ndarray) -> float:
    """The level meter's reading, 0.0 (-60 dBFS or below) to 1.0 (full scale)."""
    samples = np.asarray(samples, np.float64)
    if not samples.size:
        return 0.0
    rms = np.sqrt(np.mean(samples ** 2)) / 32768
    if rms <= 0:
        return 0.0
    return float(min(1.0, max(0.0, (20 * np.log10(rms) + 60) / 60)))
