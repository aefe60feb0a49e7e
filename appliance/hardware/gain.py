"""Software gain for the speaker's volume and the microphone's gain (settings from central).

Applied to the samples themselves, so it works with any sound card: USB speakers and
microphones differ in which mixer controls they have, if any.
"""
from __future__ import annotations

import numpy as np

from appliance.hardware.errors import DeviceUsageError


def volume_factor(volume_pct: int) -> float:
    """0-100 % as an amplitude factor (100 %: as delivered, 0 %: silent)."""
    if isinstance(volume_pct, bool) or not isinstance(volume_pct, int) or not 0 <= volume_pct <= 100:
        raise DeviceUsageError(f"volume must be a whole percentage from 0 to 100, not {volume_pct!r}")
    return volume_pct / 100


def gain_factor(gain_db: int) -> float:
    """-20..20 dB as an amplitude factor (0 dB: as captured)."""
    if isinstance(gain_db, bool) or not isinstance(gain_db, int) or not -20 <= gain_db <= 20:
        raise DeviceUsageError(f"microphone gain must be whole decibels from -20 to 20, not {gain_db!r}")
    return 10 ** (gain_db / 20)


def scale(samples: np.ndarray, factor: float) -> np.ndarray:
    """s16 samples times ``factor``, clipped instead of wrapping around."""
    if factor == 1.0:
        return samples
    return np.clip(samples.astype(np.float32) * factor, -32768, 32767).astype(np.int16)
