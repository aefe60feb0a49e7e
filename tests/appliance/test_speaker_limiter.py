"""What the kiosk sends to its loudspeaker (appliance/hardware/limiter.py): ordinary speech passes
untouched, a loud clerk is levelled down without a click, and peaks stay below the ceiling."""
import numpy as np
import pytest

from appliance.hardware.errors import DeviceUsageError
from appliance.hardware.limiter import DEFAULT_CEILING_DBFS, LEVEL_DBFS, SoftLimiter

SR = 48000
FRAME = 960


def tone(dbfs_rms: float, seconds: float) -> np.ndarray:
    n = np.arange(int(seconds * SR))
    return np.round(np.sqrt(2) * 32767 * 10 ** (dbfs_rms / 20) * np.sin(2 * np.pi * 300 * n / SR)).astype(np.int16)


def played(shape: SoftLimiter, samples: np.ndarray) -> np.ndarray:
    return np.concatenate([shape(samples[i:i + FRAME]) for i in range(0, samples.size, FRAME)])


def rms_dbfs(samples: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(samples.astype(np.float64) ** 2)) / 32767)


def test_ordinary_speech_passes_unchanged():
    speech = tone(LEVEL_DBFS - 4, 2.0)  # peaks at -21 dBFS, under the limiter's knee too
    assert np.array_equal(played(SoftLimiter(), speech), speech)


def test_a_loud_clerk_is_brought_down_to_an_ordinary_level_without_a_click():
    out = played(SoftLimiter(), tone(-12, 4.0)).astype(np.float64)
    assert rms_dbfs(out[-SR:]) == pytest.approx(LEVEL_DBFS, abs=1.0)  # after a few seconds: levelled
    # The gain glides: sample to sample the output never jumps more than the tone itself moves.
    assert np.abs(np.diff(out)).max() <= np.abs(np.diff(tone(-12, 4.0).astype(np.float64))).max() + 2


def test_peaks_stay_below_the_ceiling_and_keep_their_order():
    limit = SoftLimiter(DEFAULT_CEILING_DBFS, level_dbfs=None)
    ramp = np.linspace(-32768, 32767, 20001).astype(np.int16)
    out = limit(ramp).astype(int)
    assert np.abs(out).max() <= 32767 * 10 ** (DEFAULT_CEILING_DBFS / 20)
    assert np.all(np.diff(out) >= 0)  # a curve, not a clip: louder stays louder
    quiet = np.abs(ramp.astype(int)) < 11000  # under the knee (-9 dBFS): untouched
    assert np.array_equal(out[quiet], ramp[quiet])


@pytest.mark.parametrize("bad", [3, -40, "loud", True])
def test_a_wrong_setting_says_what_is_allowed(bad):
    with pytest.raises(DeviceUsageError, match="limit_dbfs must be a number from -20 to 0"):
        SoftLimiter(bad)
