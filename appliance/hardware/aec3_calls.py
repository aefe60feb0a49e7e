"""AEC3's three calls (far end in, microphone in, delay hint), each with its request prepared once.

livekit's ``rtc.AudioProcessingModule`` builds, serialises and parses a protobuf message for every 10 ms
chunk, in Python: 250 calls a second for a 48 kHz microphone. On this machine that is a third of the
canceller's small cost; where Python runs slowly (an emulated CPU, a slow unit) it is as much as AEC3
itself (docs/benchmarks.md). Yet nothing in those requests changes from call to call but the sound, and
the sound is passed by address: with one fixed buffer per direction, each request's bytes are the same
every time. So they are serialised once here, and each call is one native call with them, the sound
copied into its buffer, and the answer compared with the answer of a call that went well (parsed only
if it differs, to raise its error).

This leans on livekit's internal FFI client (the one its own module uses; the image pins the version in
image/build/pypi.txt); should that change, :func:`open_aec3` says why and falls back to the module's
own calls, which give the same sound (tests/appliance/test_aec3_calls.py compares them sample for sample).
"""
from __future__ import annotations

import ctypes
import logging

import numpy as np

from appliance.hardware.errors import EchoCancellerError

log = logging.getLogger(__name__)


class PublicCalls:
    """The same three calls through livekit's own module (the fallback, and the reference in tests)."""

    def __init__(self, rtc, apm, rate: int) -> None:
        self._rtc, self._apm, self._rate, self._chunk = rtc, apm, rate, rate // 100

    def set_delay(self, delay_ms: int) -> None:
        self._apm.set_stream_delay_ms(delay_ms)

    def render(self, samples: np.ndarray) -> None:
        self._apm.process_reverse_stream(self._frame(samples))

    def capture(self, samples: np.ndarray) -> np.ndarray:
        frame = self._frame(samples)
        self._apm.process_stream(frame)
        return np.frombuffer(frame.data, np.int16).copy()

    def _frame(self, samples: np.ndarray):
        return self._rtc.AudioFrame(bytearray(samples.tobytes()), self._rate, 1, self._chunk)


class _Prepared:
    """One request whose bytes never change, sent as they are."""

    def __init__(self, lib, request, answer_of) -> None:
        data = request.SerializeToString()
        self._lib, self._answer_of = lib, answer_of
        self._data = ctypes.create_string_buffer(data, len(data))  # stays where it is while this lives
        self._ptr = ctypes.cast(self._data, ctypes.POINTER(ctypes.c_ubyte))
        self._len = len(data)
        self._resp = ctypes.POINTER(ctypes.c_ubyte)()
        self._resp_len = ctypes.c_size_t()
        self._resp_ref, self._resp_len_ref = ctypes.byref(self._resp), ctypes.byref(self._resp_len)
        self._ok: bytes | None = None  # the answer of a call that went well

    def __call__(self) -> None:
        handle = self._lib.livekit_ffi_request(self._ptr, self._len, self._resp_ref, self._resp_len_ref)
        if not handle:
            raise EchoCancellerError("livekit's native library refused an echo canceller call")
        answer = ctypes.string_at(self._resp, self._resp_len.value)
        self._lib.livekit_ffi_drop_handle(handle)  # frees the answer
        if answer != self._ok:
            error = self._answer_of(answer)
            if error:
                raise EchoCancellerError(f"the echo canceller refused a call: {error}")
            self._ok = answer


class PreparedCalls:
    """The three calls with their requests serialised once (the module docstring says why)."""

    def __init__(self, apm, rate: int) -> None:
        from livekit.rtc._ffi_client import FfiClient
        from livekit.rtc._proto import ffi_pb2

        self._apm = apm  # keeps the native module alive as long as this
        lib, handle, chunk = FfiClient.instance._ffi_lib, apm._ffi_handle.handle, rate // 100
        self._render_buf, self._capture_buf = bytearray(2 * chunk), bytearray(2 * chunk)
        self._render_view = np.frombuffer(self._render_buf, np.int16)
        self._capture_view = np.frombuffer(self._capture_buf, np.int16)

        def stream(field: str, buffer: bytearray):
            request = ffi_pb2.FfiRequest()
            body = getattr(request, field)
            body.apm_handle = handle
            body.data_ptr = ctypes.addressof((ctypes.c_char * len(buffer)).from_buffer(buffer))
            body.size, body.sample_rate, body.num_channels = len(buffer), rate, 1
            return _Prepared(lib, request, _error_of(ffi_pb2, field))

        self._render = stream("apm_process_reverse_stream", self._render_buf)
        self._capture = stream("apm_process_stream", self._capture_buf)
        self._delays: dict[int, _Prepared] = {}
        self._new_delay = lambda delay_ms: _Prepared(lib, _delay_request(ffi_pb2, handle, delay_ms),
                                                     _error_of(ffi_pb2, "apm_set_stream_delay"))

    def set_delay(self, delay_ms: int) -> None:
        call = self._delays.get(delay_ms)
        if call is None:
            call = self._delays[delay_ms] = self._new_delay(delay_ms)
        call()

    def render(self, samples: np.ndarray) -> None:
        self._render_view[:] = samples
        self._render()

    def capture(self, samples: np.ndarray) -> np.ndarray:
        """The chunk with the echo removed: valid until the next call (copy it out at once)."""
        self._capture_view[:] = samples
        self._capture()
        return self._capture_view


def _delay_request(ffi_pb2, handle: int, delay_ms: int):
    request = ffi_pb2.FfiRequest()
    request.apm_set_stream_delay.apm_handle = handle
    request.apm_set_stream_delay.delay_ms = delay_ms
    return request


def _error_of(ffi_pb2, field: str):
    def error(answer: bytes) -> str:
        response = ffi_pb2.FfiResponse()
        response.ParseFromString(answer)
        return getattr(response, field).error
    return error


def open_aec3(rtc, rate: int, *, noise_suppression: bool, high_pass_filter: bool, prepared: bool = True):
    """A new AEC3 at ``rate``: its calls prepared once if livekit's internals allow it, else its own."""
    apm = rtc.AudioProcessingModule(
        echo_cancellation=True, noise_suppression=noise_suppression, high_pass_filter=high_pass_filter,
        # Gain control stays off: it would pump the level of the echo
        # residue and fight the fixed microphone gain set at installation.
        auto_gain_control=False)
    if prepared:
        try:
            return PreparedCalls(apm, rate)
        except (ImportError, AttributeError, TypeError) as exc:
            log.warning("the echo canceller's calls cannot be prepared with this livekit (%s): it uses livekit's "
                        "own, which cost more CPU. Install the livekit version image/build/pypi.txt pins", exc)
    return PublicCalls(rtc, apm, rate)
