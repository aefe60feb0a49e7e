"""48 kHz to 16 kHz and back, for an echo canceller that works on speech's band alone.

AEC3 at 48 kHz splits the sound into three bands and filters each; at 16 kHz it has one. When a unit
is too slow for the first (echo.py: the canceller's own CPU per second of sound says so), it works at
16 kHz: speech up to 8 kHz, as a telephone's wideband call, at about 60 % of the cost where the
canceller's time is spent (docs/benchmarks.md). The microphone and the far end go through the same
:class:`Decimator`, so the echo's delay between them stays as it was; the call still gets 48 kHz,
from :class:`Interpolator`.

Both are linear-phase FIR filters on numpy, exact in length (every 3 samples in give 1 out, and 1 in
gives 3 out) and stateful across blocks, so the canceller's 10 ms chunks stay whole and in step. Each
output is one dot product over a strided view of the input: only the outputs kept are computed (a third
of a plain convolution's work for the decimator, a third for the interpolator's zeros), in float32, with
a handful of numpy calls per block; on an emulated or slow CPU the count of multiplications and of calls
is what costs.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

FACTOR = 3  # 48 kHz / 16 kHz
TAPS = 96   # a multiple of FACTOR: each of the interpolator's phases has TAPS // FACTOR of them
CUTOFF_HZ = 7000.0
SOURCE_RATE = 48000


def _lowpass() -> np.ndarray:
    """Windowed sinc, -6 dB at CUTOFF_HZ, under -70 dB from 9 kHz (Kaiser window, beta 7): sound above 8 kHz
    cannot fold back into the speech band at 16 kHz."""
    n = np.arange(TAPS) - (TAPS - 1) / 2
    taps = 2 * CUTOFF_HZ / SOURCE_RATE * np.sinc(2 * CUTOFF_HZ / SOURCE_RATE * n) * np.kaiser(TAPS, 7.0)
    return taps / taps.sum()


LOWPASS = _lowpass().astype(np.float32)


def _to_int16(values: np.ndarray) -> np.ndarray:
    return np.rint(values).clip(-32768, 32767).astype(np.int16)


class Decimator:
    """48 kHz s16 in blocks of a multiple of 3 samples → 16 kHz s16, a third as many."""

    def __init__(self) -> None:
        self._history = np.zeros(TAPS - 1, np.float32)  # the input's last samples, for the next block's first outputs
        self._taps = np.ascontiguousarray(LOWPASS[::-1])

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        if samples.size % FACTOR:
            raise ValueError(f"blocks must be a multiple of {FACTOR} samples, got {samples.size}")
        buf = np.concatenate((self._history, samples.astype(np.float32)))
        self._history = buf[buf.size - (TAPS - 1):]
        # Output k is the filter over the TAPS inputs that end at the block's sample 3k+2.
        step = buf.itemsize
        windows = as_strided(buf[FACTOR - 1:], shape=(samples.size // FACTOR, TAPS), strides=(FACTOR * step, step),
                             writeable=False)
        return _to_int16(windows.dot(self._taps))


class Interpolator:
    """16 kHz s16 → 48 kHz s16, three times as many (zeros between the samples, then the same low-pass)."""

    def __init__(self) -> None:
        self._per_phase = TAPS // FACTOR
        # Phase p of output 3k+p sums LOWPASS[p + 3j] * input[k - j]: three short filters, gain 3 each.
        self._phases = [np.ascontiguousarray(LOWPASS[p::FACTOR][::-1] * FACTOR) for p in range(FACTOR)]
        self._history = np.zeros(self._per_phase - 1, np.float32)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        buf = np.concatenate((self._history, samples.astype(np.float32)))
        self._history = buf[buf.size - self._history.size:]
        step = buf.itemsize
        windows = as_strided(buf, shape=(samples.size, self._per_phase), strides=(step, step), writeable=False)
        out = np.empty((samples.size, FACTOR), np.float32)
        for p, taps in enumerate(self._phases):
            out[:, p] = windows.dot(taps)
        return _to_int16(out.reshape(-1))
