"""Acoustic echo cancellation: keeps the clerk from hearing themselves.

The kiosk's speaker and microphone share a small room, and there is no headset:
without cancellation the clerk hears their own voice back after the round
trip.  This wraps WebRTC's AEC3 (plus noise suppression and a high-pass filter),
as shipped in livekit's ``rtc.AudioProcessingModule``, the same canceller a
browser runs.

AEC3 works on 10 ms frames.  The speaker calls :meth:`EchoCanceller.far_end`
with whatever it plays; the microphone passes each captured frame through
:meth:`EchoCanceller.process`.  The two run on different threads, so every call
into the module is serialised by one lock.

AEC3 assumes that speaker and microphone share one clock; a USB microphone beside
the Pi's audio out does not.  The speaker therefore also reports how far its
device has played (:meth:`EchoCanceller.speaker_position`); with the microphone's
captured count this gives the ratio of the two clocks, and the far end is
resampled onto the microphone's clock before AEC3 sees it
(appliance/hardware/drift.py).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import av
import numpy as np

from appliance.hardware.aec3_calls import open_aec3
from appliance.hardware.drift import ClockRatio, Resampler
from appliance.hardware.echo_align import ReferenceQueue
from appliance.hardware.echo_streams import StreamCounters
from appliance.hardware.errors import DeviceUsageError, HardwareError

log = logging.getLogger(__name__)

SAMPLE_RATE = 48000
CHUNK = SAMPLE_RATE // 100  # AEC3's 10 ms frame
# Speaker path (ALSA buffer + DAC) plus microphone path (ADC + ALSA period):
# roughly 80 ms + 40 ms on a Pi with a USB microphone.  Only a starting hint:
# AEC3 estimates the actual delay itself and follows it.
DEFAULT_DELAY_MS = 120
# Falling behind the microphone this often within SHED_WINDOW_S is no passing hiccup (a stalled SD card, a
# burst of other work) but a unit too busy for the canceller: it drops noise suppression (the next section).
SHED_AFTER = 3
SHED_WINDOW_S = 60.0


class EchoCanceller:
    """WebRTC AEC3 on 48 kHz mono s16, fed in 10 ms chunks.

    On a unit too busy for it, the canceller falls behind the microphone, skips sound, and after each skip
    lets the echo through until it has the far end again. Then it sheds its noise suppression: about a
    seventh of its CPU (docs/benchmarks.md), and background noise is the lesser harm than the clerk's
    own voice coming back. It says so in the journal and keeps it off until the appliance restarts.
    """

    def __init__(self, *, delay_ms: int = DEFAULT_DELAY_MS, noise_suppression: bool = True,
                 high_pass_filter: bool = True, drift_compensation: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        try:
            from livekit import rtc  # heavy native library: load only when echo cancellation is wanted
        except ImportError as exc:
            raise HardwareError("echo cancellation needs the 'livekit' package (pip install livekit)") from exc
        # Its calls prepared once: aec3_calls.py says why.
        self._rtc, self._high_pass_filter = rtc, high_pass_filter
        self.noise_suppression = noise_suppression
        self.delay_ms = delay_ms
        self._apm = self._open_aec3(noise_suppression)
        self._behind_at: list[float] = []  # when it fell behind, within the last SHED_WINDOW_S
        # The self-test's tone must reach the microphone as the room carries it: cancelling it
        # would make a working speaker look broken. While bypassed, both sides pass untouched.
        self.bypassed = False
        self._lock = threading.Lock()
        self._far = ReferenceQueue()  # played samples waiting for the microphone's (echo_align.py)
        self._realigned = 0  # of those pairings started afresh, how many the echo report has told
        self._written = 0  # far-end samples as the speaker wrote them (before drift resampling)
        # How fast each device's sample count grows gives the ratio of their clocks.
        self.clocks = ClockRatio() if drift_compensation else None
        self._resample = Resampler()
        self._clock = clock
        self.streams = StreamCounters()  # what it was fed, for the echo report (echo_streams.py)
        # More for the report's window, from whoever runs the canceller (its process: CPU, frames skipped).
        self.window_note: Callable[[], str] | None = None

    def _open_aec3(self, noise_suppression: bool):  # noqa: ANN202 - aec3_calls.PreparedCalls or PublicCalls
        """A fresh AEC3 with this canceller's settings."""
        aec3 = open_aec3(self._rtc, SAMPLE_RATE, noise_suppression=noise_suppression,
                         high_pass_filter=self._high_pass_filter)
        aec3.set_delay(self.delay_ms)
        return aec3

    def far_end(self, frame: av.AudioFrame | np.ndarray) -> None:
        """Tell the canceller what the speaker's device plays next (48 kHz mono s16, any length), in the
        order it plays it: it waits here for the microphone's samples it is paired with (echo_align.py)."""
        samples = mono_s16(frame)
        with self._lock:
            self._written += samples.size  # also while bypassed: the device plays it all the same
            if self._apm is None or self.bypassed:
                return
            if self.clocks is not None:
                self._resample.ratio = self.clocks.ratio
                samples = self._resample(samples)
            self.streams.far_end(samples.size)
            self._far.add(samples)

    def speaker_position(self, played: int, *, restart: bool = False) -> None:
        """The speaker's device has now played ``played`` samples in all (written minus queued);
        ``restart`` after an underrun, when the device stood still for a while."""
        with self._lock:
            # Every sample written came through far_end: the rest of it is still in the device's buffer.
            self._far.speaker_queued = self._written - played
            if self._apm is not None and self.clocks is not None:
                self.clocks.speaker(played, self._clock(), restart=restart)

    def speaker_silence(self, samples: int | None) -> None:
        """The speaker's device ran dry and played ``samples`` of silence that never came through
        :meth:`far_end` (an underrun, until the next write started it again); None when it starts
        after standing still for a time nobody measured (a call's first words)."""
        with self._lock:
            if samples is not None:
                self.streams.speaker_silence(samples)
            self._far.silence(samples)

    def microphone_lost(self, samples: int) -> None:
        """The microphone's device overflowed: ``samples`` of captured sound never reached :meth:`process`."""
        with self._lock:
            self.streams.microphone_lost(samples)
            self._far.skip(samples)

    def streams_line(self) -> str:
        """What the canceller was fed since the last call (echo_streams.py); starts the next window."""
        with self._lock:
            ppm = None if self.clocks is None else self.clocks.ppm
            estimate = None if self.clocks is None else self.clocks.estimate_ppm
            realigned, self._realigned = self._far.realigned - self._realigned, self._far.realigned
            notes = [f"paired afresh {realigned} times" if realigned else "",
                     "" if self.noise_suppression else "noise suppression shed",
                     self.window_note() if self.window_note is not None else ""]
            self.streams.note = ", ".join(note for note in notes if note)
            return self.streams.line(ppm, estimate)

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Cancel echo in captured microphone samples (48 kHz mono s16, multiple of 10 ms)."""
        samples = np.ascontiguousarray(samples, dtype=np.int16).reshape(-1)
        if samples.size % CHUNK:
            raise DeviceUsageError(f"microphone frames must be a multiple of {CHUNK} samples, got {samples.size}")
        out = np.empty_like(samples)
        with self._lock:
            if self._apm is None or self.bypassed:  # closed while a capture thread was finishing, or self-test
                return samples
            if self.clocks is not None:
                self.clocks.microphone(samples.size, self._clock())
            self.streams.microphone(samples.size, self._far.lead)
            # AEC3 wants the delay hint before every captured frame.
            aec3 = self._apm
            aec3.set_delay(self.delay_ms)
            # As much far end as there is microphone, handed over just before it, as a sound card's
            # callback does: AEC3's render buffer neither runs over nor empty. The whole block's far end
            # first: in strict 10 ms turns AEC3 lost half its ERLE (33 dB, not 52, in bench/_echo_busy.py).
            far = self._far.take(samples.size)
            for start in range(0, samples.size, CHUNK):
                aec3.render(far[start:start + CHUNK])
            for start in range(0, samples.size, CHUNK):
                out[start:start + CHUNK] = aec3.capture(samples[start:start + CHUNK])
        return out

    def fell_behind(self) -> None:
        """The microphone's capture skipped sound because this canceller fell behind it (alsa_capture.py)."""
        now = self._clock()
        self._behind_at = [at for at in self._behind_at if now - at < SHED_WINDOW_S] + [now]
        if len(self._behind_at) < SHED_AFTER or not self.noise_suppression:
            return
        with self._lock:
            if self._apm is None:
                return
            # A fresh AEC3 finds the echo again within a second or two, as at a call's start.
            self._apm = self._open_aec3(noise_suppression=False)
            self.noise_suppression = False
        log.warning("the echo canceller fell behind the microphone %d times within %.0f s: it now works without "
                    "noise suppression, which leaves it a seventh more of the CPU (background noise may reach the "
                    "clerk), until the appliance restarts. The unit is too busy: lower the camera's size or rate, "
                    "or use a faster unit", len(self._behind_at), SHED_WINDOW_S)

    def close(self) -> None:
        """Free the native module; later calls pass audio through unchanged."""
        with self._lock:
            self._apm = None


def mono_s16(frame: av.AudioFrame | np.ndarray) -> np.ndarray:
    """The samples of what the speaker plays, as the canceller takes them (48 kHz mono s16)."""
    if isinstance(frame, np.ndarray):
        return np.ascontiguousarray(frame, dtype=np.int16).reshape(-1)
    if frame.format.name != "s16" or frame.layout.nb_channels != 1 or frame.sample_rate != SAMPLE_RATE:
        raise DeviceUsageError("far-end frames must be 48 kHz mono s16 (the speaker resamples before playing)")
    return frame.to_ndarray().reshape(-1)
