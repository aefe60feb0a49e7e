"""48 kHz to 16 kHz and back for the echo canceller: speech passes unchanged, nothing above 8 kHz folds back,
and blocks of any multiple of 3 samples give exactly as many samples as the whole sound at once."""
import numpy as np
import pytest

from appliance.hardware.wideband import Decimator, Interpolator

RATE = 48000


def tone(hz: float, seconds: float = 1.0) -> np.ndarray:
    return (np.sin(2 * np.pi * hz * np.arange(int(RATE * seconds)) / RATE) * 10000).astype(np.int16)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def round_trip(x: np.ndarray, block: int = 960) -> np.ndarray:
    down, up = Decimator(), Interpolator()
    return np.concatenate([up(down(x[i:i + block])) for i in range(0, x.size, block)])


@pytest.mark.parametrize("hz", [200, 1000, 3000, 6000])
def test_speech_passes_at_its_level(hz):
    out = round_trip(tone(hz))
    assert 20 * np.log10(rms(out[RATE // 10:]) / rms(tone(hz)[RATE // 10:])) == pytest.approx(0, abs=0.1)


@pytest.mark.parametrize("hz", [9500, 12000, 15000, 20000])
def test_nothing_above_8_khz_comes_through_or_folds_back(hz):
    down = Decimator()
    low = np.concatenate([down(tone(hz)[i:i + 960]) for i in range(0, RATE, 960)])
    assert low.size == RATE // 3
    assert rms(low[1600:]) < 10000 / np.sqrt(2) / 1000  # at least 60 dB down, at any frequency it would fold to


def test_blocks_give_the_same_sound_as_the_whole():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(RATE) * 3000).astype(np.int16)
    whole = round_trip(x, block=x.size)
    assert whole.size == x.size
    for block in (3, 480, 960, 4800):
        assert np.array_equal(round_trip(x, block), whole)


def test_the_round_trip_delays_by_under_2_ms():
    x = np.zeros(RATE // 10, np.int16)
    x[960] = 30000
    assert 0 < int(np.argmax(round_trip(x))) - 960 < RATE * 0.002


def test_a_block_not_a_multiple_of_three_is_refused():
    with pytest.raises(ValueError, match="multiple of 3"):
        Decimator()(np.zeros(10, np.int16))
