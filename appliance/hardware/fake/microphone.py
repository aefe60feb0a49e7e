"""Synthetic microphone: a pulsing sine tone, used instead of the USB microphone.

The tone alternates every 500 ms between loud (0.3 full scale) and quiet
(0.03 full scale).  The pulsing makes it recognisable by ear and in level
meters, while never going fully silent means a receiver checking "audio level
> 0" passes no matter which window it looks at.

Each 20 ms frame is handed out when its last sample has been "captured", as a
sound card delivers a period only once it is full: the fake is no faster than a
real microphone, so a latency measured through it includes the capture period.
``say()`` adds a sound (a click, a word) from the present moment on, for
measuring how long it takes to be heard at the other end.
"""

import asyncio
import fractions
import time

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

LOUD, QUIET = 0.3, 0.03  # fraction of full scale
PULSE_SECONDS = 0.5
RAMP_SECONDS = 0.005  # soften the level steps so they do not click


class SyntheticMicrophoneTrack(MediaStreamTrack):
    """Audio track producing mono s16 frames of a pulsing tone in real time."""

    kind = "audio"

    def __init__(self, frequency: float = 440.0, sample_rate: int = 48000,
                 ptime: float = 0.02, room=None) -> None:
        """``room`` (appliance.hardware.fake.room.Room), if given: what the fake speaker plays is mixed in."""
        super().__init__()
        self.frequency = frequency
        self.room = room
        self.sample_rate = sample_rate
        self.samples_per_frame = int(round(ptime * sample_rate))
        self._time_base = fractions.Fraction(1, sample_rate)
        self._start: float | None = None
        self._timestamp = 0
        self._handed_out = 0  # samples handed out so far
        self._said: list[tuple[int, np.ndarray]] = []  # (first sample index, samples in full-scale units)

    def _envelope(self, n: np.ndarray) -> np.ndarray:
        pulse = PULSE_SECONDS * self.sample_rate
        pos = n % (2 * pulse)
        # Distance (in samples) to the nearest loud/quiet boundary, for the ramp.
        edge = np.minimum(pos, np.abs(pulse - pos))
        edge = np.minimum(edge, 2 * pulse - pos)
        ramp = np.clip(edge / (RAMP_SECONDS * self.sample_rate), 0.0, 1.0)
        loud = pos < pulse
        # Crossfade towards the mid level at each boundary, so both sides meet.
        mid = (LOUD + QUIET) / 2
        level = np.where(loud, LOUD, QUIET)
        return mid + (level - mid) * ramp

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        # Paced like aiortc's AudioStreamTrack, but on the monotonic clock so a wall-clock
        # step cannot stall or burst the stream, and a frame only once all of it is "captured".
        if self._start is None:
            self._start = time.monotonic()
        self._timestamp = self._handed_out
        wait = self._start + (self._timestamp + self.samples_per_frame) / self.sample_rate - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

        # Phase from the absolute sample index keeps the tone continuous
        # across frames without accumulating rounding error.
        n = np.arange(self._timestamp, self._timestamp + self.samples_per_frame, dtype=np.int64)
        phase = 2 * np.pi * self.frequency * (n / self.sample_rate)
        signal = np.sin(phase) * self._envelope(n) * 32767
        if self.room is not None:
            signal = signal + self.room.take(n.size)
        signal = signal + self._take_said(n) * 32767
        samples = np.clip(signal, -32768, 32767).astype(np.int16).reshape(1, -1)

        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self._timestamp
        frame.time_base = self._time_base
        self._handed_out = self._timestamp + self.samples_per_frame
        return frame

    def say(self, samples: np.ndarray) -> float:
        """Let the microphone hear ``samples`` (48 kHz mono, full scale = 1.0) from now on.

        Returns the ``time.monotonic()`` at which their first sample reaches the microphone: the
        start of a mouth-to-ear measurement. Call it on the loop that receives from this track."""
        now = time.monotonic()
        if self._start is None:
            self._start = now
        # The sample being captured now, or the first not yet handed out if the reader is late.
        first = max(self._handed_out, int(np.ceil((now - self._start) * self.sample_rate)))
        self._said.append((first, np.asarray(samples, np.float64)))
        return self._start + first / self.sample_rate

    def _take_said(self, n: np.ndarray) -> np.ndarray:
        out = np.zeros(n.size)
        begin, end = int(n[0]), int(n[-1]) + 1
        keep = []
        for first, samples in self._said:
            lo, hi = max(begin, first), min(end, first + samples.size)
            if lo < hi:
                out[lo - begin:hi - begin] += samples[lo - first:hi - first]
            if first + samples.size > end:
                keep.append((first, samples))
        self._said = keep
        return out
