"""What the kiosk sends to its loudspeaker: a loud clerk levelled down, and peaks kept below the point
where the loudspeaker distorts. The echo canceller gets its copy after this, so it sees what is played.

Two reasons, both measured in tests/appliance/test_echo.py:

- A small loudspeaker (or its amplifier) driven past its limit flattens a loud clerk's peaks. The
  canceller is told what was sent, not what the distorted speaker made of it, and a linear canceller
  cannot model the difference: a loudspeaker clipping 6 dB below full scale cost 15-20 dB of ERLE.
  A soft limiter with its ceiling at or below that point keeps the loudspeaker linear.
- The louder the clerk's echo at the microphone is against the citizen, the more the canceller's
  suppressor takes off the citizen while both talk (AEC3's suppressor is fixed; we cannot tune it).
  A clerk 6 dB louder than usual raised that near-end loss from about 3 to 5.5 dB. Levelling the
  clerk down to an ordinary speech level (never up) keeps the echo where the installer set the volume.

Both are cheap: per frame one mean square and, only when something is to be changed, a gain ramp and a
tanh over the samples.
"""
from __future__ import annotations

import math

import numpy as np

from appliance.hardware.errors import DeviceUsageError

DEFAULT_CEILING_DBFS = -6.0  # where a typical small powered speaker at full volume starts to distort
KNEE_DB = 3.0                # the curve starts bending this far below the ceiling
LEVEL_DBFS = -20.0           # a clerk's speech (RMS while talking) is brought down to this, never up
LEVEL_TIME_S = 1.0           # over about this long: syllables keep their shape, a loud clerk is caught
SILENCE_DBFS = -50.0         # frames quieter than this (pauses) do not pull the level estimate down
FULL_SCALE = 32767.0


def ceiling_factor(ceiling_dbfs: float) -> float:
    """The speaker's ``limit_dbfs`` setting (-20..0 dBFS) as a fraction of full scale."""
    if isinstance(ceiling_dbfs, bool) or not isinstance(ceiling_dbfs, int | float) or not -20 <= ceiling_dbfs <= 0:
        raise DeviceUsageError(f"speaker limit_dbfs must be a number from -20 to 0 (dB below full scale), "
                               f"not {ceiling_dbfs!r}")
    return 10 ** (ceiling_dbfs / 20)


class SoftLimiter:
    """Levels loud speech down to :data:`LEVEL_DBFS`, then bends s16 samples above ``ceiling_dbfs - KNEE_DB``
    smoothly towards ``ceiling_dbfs``. Call it with each frame as it is played (it keeps the level)."""

    def __init__(self, ceiling_dbfs: float = DEFAULT_CEILING_DBFS, *, level_dbfs: float | None = LEVEL_DBFS,
                 sample_rate: int = 48000) -> None:
        ceiling = ceiling_factor(ceiling_dbfs) * FULL_SCALE
        self.ceiling_dbfs = ceiling_dbfs
        self._knee = ceiling * 10 ** (-KNEE_DB / 20)
        self._span = ceiling - self._knee
        self._target = None if level_dbfs is None else (10 ** (level_dbfs / 20) * FULL_SCALE) ** 2
        self._silence = (10 ** (SILENCE_DBFS / 20) * FULL_SCALE) ** 2
        self._rate = sample_rate
        # Smoothed mean square of speech frames; it starts at the target, so that a short sound (the
        # self-test's 1 s tone at -15 dBFS) loses at most a few dB while a loud clerk is caught in seconds.
        self._power = self._target
        self.gain = 1.0

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        out = samples
        if self._target is not None and samples.size:
            out = self._level(samples)
        level = np.abs(out.astype(np.float32))
        if level.max(initial=0.0) <= self._knee:
            return out  # the usual case: nothing to bend, nothing copied
        over = level > self._knee
        bent = self._knee + self._span * np.tanh((level[over] - self._knee) / self._span)
        shaped = out.astype(np.float32)
        shaped[over] = np.sign(shaped[over]) * bent
        return np.round(shaped).astype(np.int16)

    def _level(self, samples: np.ndarray) -> np.ndarray:
        power = float(np.mean(np.square(samples, dtype=np.float32)))
        if power > self._silence:
            share = 1 - math.exp(-samples.size / self._rate / LEVEL_TIME_S)
            self._power += share * (power - self._power)
        gain = min(1.0, math.sqrt(self._target / self._power))
        previous, self.gain = self.gain, gain
        if previous == gain == 1.0:
            return samples
        # A ramp from the last frame's gain to this one's: a step would click.
        ramp = np.linspace(previous, gain, samples.size, endpoint=False, dtype=np.float32).reshape(samples.shape)
        return np.round(samples * ramp).astype(np.int16)
