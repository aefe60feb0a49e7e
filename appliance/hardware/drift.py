"""The speaker's and the microphone's clocks: how far apart they run, and the far end put on the microphone's.

A USB microphone and the Pi's own audio out (or any two sound cards) each run from a crystal of their
own, specified to +-50..100 ppm: 48 kHz on one is 48,009.6 Hz on the other. The echo canceller's
adaptive filter models the room as a fixed delay plus reflections; with the clocks apart the echo slides
by one sample every 5,000 (at 200 ppm) and the filter keeps chasing it (ERLE fell from 53 to 29 dB in
tests/appliance/test_echo.py). :class:`ClockRatio` estimates the ratio of the two rates from when each
side's samples arrive, and :class:`Resampler` resamples what the speaker plays by that ratio, so the
canceller's reference runs on the microphone's clock.
"""
from __future__ import annotations

import collections
import logging
import math

import numpy as np

log = logging.getLogger(__name__)

WINDOW_S = 60.0       # the rate of a stream is fitted over its last minute of samples
BUCKET = 25           # calls per point of the fit: the earliest of them (a thread is late, never early)
MIN_SPAN_S = 5.0      # no fit before a stream has run this long
GAP_S = 0.5           # a stream that pauses this long (between calls) starts a new stretch
MAX_PPM = 1000.0      # crystals are 100 ppm at worst; more is a stream that stalled, not a clock
SURE = 3.0            # the ratio changes when the fit differs from it by this many standard errors ...
RETUNE_PPM = 20.0     # ... and by this much: the canceller copes with a steady error of 40 ppm
                      # but re-adapts after every change, so a wandering ratio would cost more
REFIT_EVERY = 50      # microphone blocks between two fits (1 s of 20 ms frames)
NOMINAL_RATE = 48000


class _Stretch:
    """When samples of one stream arrived, while the stream runs without a pause.

    Of every :data:`BUCKET` calls only the earliest (against the nominal rate) is kept: a thread
    handing over a block is late by its scheduling, never early, so the earliest calls lie on the
    device's own line and the fit through them is not pulled by the lateness of the others.
    """

    def __init__(self) -> None:
        self.points: collections.deque[tuple[float, int]] = collections.deque()
        self._count = 0
        self._last = -math.inf
        self._bucket: tuple[float, int] | None = None
        self._in_bucket = 0

    def restart(self) -> None:
        """The stream was interrupted (an underrun, a pause): the line before it is not the line after."""
        self.points.clear()
        self._bucket, self._in_bucket = None, 0

    def add(self, samples: int, now: float) -> None:
        if now - self._last > GAP_S:
            self.restart()  # between calls: the line through a pause is not the clock's rate
        self._last = now
        self._count += samples
        if self._bucket is None or now - self._count / NOMINAL_RATE < self._bucket[0] - self._bucket[1] / NOMINAL_RATE:
            self._bucket = (now, self._count)
        self._in_bucket += 1
        if self._in_bucket == BUCKET:
            self.points.append(self._bucket)
            self._bucket, self._in_bucket = None, 0
            while now - self.points[0][0] > WINDOW_S:
                self.points.popleft()

    def rate(self) -> tuple[float, float] | None:
        """Samples per second over the stretch and its standard error (None until MIN_SPAN_S)."""
        if len(self.points) < 4 or self.points[-1][0] - self.points[0][0] < MIN_SPAN_S:
            return None
        t, n = np.array(self.points, dtype=np.float64).T
        t -= t.mean()
        n -= n.mean()
        slope = float(np.dot(t, n) / np.dot(t, t))
        residual = n - slope * t
        error = float(np.sqrt(np.dot(residual, residual) / (t.size - 2) / np.dot(t, t)))
        return slope, error


class ClockRatio:
    """Microphone samples per speaker sample, from how fast each device's sample count grows.

    The speaker reports how many samples its device has played (written minus still queued: not how
    fast frames are handed to it, which follows the clerk's sending clock whenever its buffer has room);
    the microphone counts what it captured when a read returns, which the device paces. ``ratio`` is
    1.0 until both sides' fits are sure enough; it is kept across pauses (it belongs to the two
    devices, not to a call).
    """

    def __init__(self) -> None:
        self.ratio = 1.0
        self.estimate_ppm: float | None = None  # the latest fit, applied or not
        self._speaker = _Stretch()
        self._speaker_position = 0
        self._microphone = _Stretch()
        self._blocks = 0

    def speaker(self, position: int, now: float, *, restart: bool = False) -> None:
        """The speaker's device has played ``position`` samples in all; ``restart`` after an underrun."""
        if restart or position < self._speaker_position:
            self._speaker.restart()
        self._speaker.add(max(0, position - self._speaker_position), now)
        self._speaker_position = position

    def microphone(self, samples: int, now: float) -> None:
        """The microphone's device has just delivered ``samples`` more."""
        self._microphone.add(samples, now)
        self._blocks += 1
        if self._blocks % REFIT_EVERY == 0:
            self._refit()

    def _refit(self) -> None:
        played, captured = self._speaker.rate(), self._microphone.rate()
        if not played or not captured:
            return
        ppm = (captured[0] / played[0] - 1) * 1e6
        uncertain = 1e6 * float(np.hypot(captured[1] / captured[0], played[1] / played[0]))
        if abs(ppm) > MAX_PPM:
            log.debug("ignoring a clock ratio of %+.0f ppm (a stream stalled?)", ppm)
            return
        self.estimate_ppm = ppm
        if abs(ppm - self.ppm) >= max(RETUNE_PPM, SURE * uncertain):
            log.info("speaker and microphone clocks differ by %+.0f ppm (+-%.0f): resampling the far end", ppm,
                     uncertain)
            self.ratio = 1 + ppm * 1e-6

    @property
    def ppm(self) -> float:
        """The ratio applied, as parts per million of difference."""
        return (self.ratio - 1) * 1e6


class Resampler:
    """Resamples a stream by ``ratio`` (output samples per input sample, near 1) with cubic interpolation.

    Any block size; the output's phase runs on without a step when ``ratio`` changes. Four-point Lagrange
    interpolation is flat within 0.02 dB up to 4 kHz at 48 kHz (where speech has its energy); it delays
    by two samples, which the canceller's own delay estimate absorbs.

    It runs on every block of the far end while the clocks differ, beside AEC3 on the same thread, so it
    is written for few numpy calls (where Python runs slowly, as on an emulated CPU, each costs as much as
    the arithmetic): the interpolator's three polynomial coefficients are three 4-tap convolutions over
    the block (Farrow's structure), and since the ratio is within a thousandth of one, the samples around
    each output are the input shifted by one offset, or two in the block where it steps: plain slices,
    never a gather.
    """

    def __init__(self, ratio: float = 1.0) -> None:
        self.ratio = ratio
        self._tail = np.zeros(3, np.float32)  # the last input samples, needed around the next block's first positions
        self._pos = 1.0           # where the next output sample lies, in samples from the start of _tail

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        buf = np.concatenate((self._tail, samples.astype(np.float32)))
        step = 1 / self.ratio
        # Outputs at _pos, _pos + step, ... while 4 samples surround them: below len(buf) - 2.
        count = max(0, int(np.ceil((buf.size - 2 - self._pos) / step)))
        if step == 1.0 and self._pos.is_integer():
            # Equal clocks (the usual case until a drift is found): the samples themselves, delayed.
            start = int(self._pos)
            out = buf[start:start + count]
        else:
            out = _interpolate(buf, self._pos, step, count)
        self._pos += count * step - (buf.size - 3)
        self._tail = buf[-3:]
        return np.rint(out).clip(-32768, 32767).astype(np.int16)


# Farrow coefficients of the cubic Lagrange interpolator between y1 (mu=0) and y2 (mu=1): each of c1, c2, c3
# is a 4-tap filter over (y0, y1, y2, y3), and the output is y1 + mu * (c1 + mu * (c2 + mu * c3)).
_FARROW = [np.array(taps[::-1], np.float32) for taps in (
    (-1 / 3, -1 / 2, 1.0, -1 / 6),
    (1 / 2, -1.0, 1 / 2, 0.0),
    (-1 / 6, 1 / 2, -1 / 2, 1 / 6),
)]


def _interpolate(buf: np.ndarray, first: float, step: float, count: int) -> np.ndarray:
    """``count`` samples of ``buf`` interpolated at ``first``, ``first + step``, ... (each with a sample before
    it and two after)."""
    pos = first + np.arange(count) * step
    at = pos.astype(np.int64)  # the sample each output follows (y1)
    mu = (pos - at).astype(np.float32)
    if count == 0 or abs(at[-1] - at[0] - (count - 1)) > 1:
        # More than one step of the offset in a block (long blocks, ratios far from one): sample by sample.
        return _lagrange(buf[at - 1], buf[at], buf[at + 1], buf[at + 2], mu)
    c1, c2, c3 = (np.convolve(buf, taps, "valid") for taps in _FARROW)  # index m: around y1 = buf[m + 1]
    out = np.empty(count, np.float32)
    # Where the offset of y1 from the output's own index steps (if it does in this block).
    split = count if at[-1] - at[0] == count - 1 else int(np.argmax(np.diff(at) != 1)) + 1
    for lo, hi in ((0, split), (split, count)):
        if lo == hi:
            continue
        shift = int(at[lo]) - lo  # y1 of output i is buf[i + shift]
        m = slice(lo + shift - 1, hi + shift - 1)
        m_mu = mu[lo:hi]
        out[lo:hi] = buf[lo + shift:hi + shift] + m_mu * (c1[m] + m_mu * (c2[m] + m_mu * c3[m]))
    return out


def _lagrange(y0, y1, y2, y3, mu):
    """Third-order Lagrange interpolation between y1 (mu=0) and y2 (mu=1), in Horner form."""
    c1 = y2 - y0 / 3 - y1 / 2 - y3 / 6
    c2 = (y0 + y2) / 2 - y1
    c3 = (y3 - y0) / 6 + (y1 - y2) / 2
    return ((c3 * mu + c2) * mu + c1) * mu + y1
