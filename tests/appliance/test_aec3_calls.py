"""AEC3's calls prepared once (appliance/hardware/aec3_calls.py) give the very sound livekit's own calls give,
and a call the native library refuses raises with its reason instead of passing sound through unnoticed."""
import sys

import numpy as np
import pytest

from appliance.hardware.aec3_calls import PreparedCalls, PublicCalls, _delay_request, _error_of, _Prepared, open_aec3
from appliance.hardware.errors import EchoCancellerError

rtc = pytest.importorskip("livekit.rtc", reason="livekit not installed (pip install livekit)")

RATE, CHUNK = 48000, 480


def room() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    far = (rng.standard_normal(RATE * 3) * 3000).astype(np.int16)
    mic = (np.roll(far, 4800) // 3 + (rng.standard_normal(far.size) * 100).astype(np.int16)).astype(np.int16)
    return far, mic


def cancel(calls, far: np.ndarray, mic: np.ndarray) -> np.ndarray:
    out = []
    for start in range(0, far.size, CHUNK):
        calls.set_delay(100)
        calls.render(far[start:start + CHUNK])
        out.append(calls.capture(mic[start:start + CHUNK]).copy())
    return np.concatenate(out)


def test_prepared_calls_give_the_same_sound_as_livekits_own():
    far, mic = room()
    prepared = open_aec3(rtc, RATE, noise_suppression=True, high_pass_filter=True)
    public = open_aec3(rtc, RATE, noise_suppression=True, high_pass_filter=True, prepared=False)
    assert isinstance(prepared, PreparedCalls) and isinstance(public, PublicCalls)
    got, expected = cancel(prepared, far, mic), cancel(public, far, mic)
    assert np.array_equal(got, expected)
    late = slice(RATE * 2, None)  # and it does cancel: the echo is far down after two seconds
    assert np.std(got[late]) < np.std(mic[late]) / 10


def test_a_refused_call_raises_with_the_native_librarys_reason():
    from livekit.rtc._ffi_client import FfiClient
    from livekit.rtc._proto import ffi_pb2
    gone = _Prepared(FfiClient.instance._ffi_lib, _delay_request(ffi_pb2, 987654321, 100),
                     _error_of(ffi_pb2, "apm_set_stream_delay"))
    with pytest.raises(EchoCancellerError, match="refused an echo canceller call"):
        gone()


def test_without_livekits_internals_it_falls_back_to_its_own_calls(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "livekit.rtc._ffi_client", None)  # as if a newer livekit had moved it
    calls = open_aec3(rtc, RATE, noise_suppression=True, high_pass_filter=True)
    assert isinstance(calls, PublicCalls)
    assert "cannot be prepared with this livekit" in caplog.text and "image/build/pypi.txt" in caplog.text
    far, mic = room()
    assert cancel(calls, far[:RATE], mic[:RATE]).shape == (RATE,)
