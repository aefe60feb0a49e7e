"""How much echo the canceller removes, reported to the log while a room is tuned or tested.

ERLE (echo return loss enhancement) is the level of what the microphone picked up over the
level of what the call sends, while the clerk's voice plays from the speaker. It is only
meaningful while the citizen is silent: their voice is meant to pass, and lowers the figure.
Off by default; ``[hardware.echo] report_s = 5`` logs one line per 5 s of call, e.g.::

    echo report: 5.0 s, far end 4.8 s, microphone -23.4 dBFS, sent -61.0 dBFS, reduced 37.6 dB; speaker
    underruns 0 (0 ms of silence not in the far end), microphone overruns 0 (0 ms lost), ...

(the boot test reads these lines in the guest: image/build/selftest/call_checks.py).
"""
from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable

import numpy as np

from appliance.hardware.echo import SAMPLE_RATE, EchoCanceller

log = logging.getLogger(__name__)

# The clerk's voice counts as playing above this level (speech is -20 to -30 dBFS; the codec's
# comfort noise far below).
FAR_END_ACTIVE_DBFS = -50.0
# Played sound reaches the microphone later (speaker buffer, room, capture period): a captured
# frame is an echo frame if the speaker played something this recently.
ECHO_TAIL_S = 0.5
FULL_SCALE = 32768.0
NEW_CALL_GAP_S = 10.0
REPORT_LINE = re.compile(
    r"echo report: (?P<window>[\d.]+) s, far end (?P<far>[\d.]+) s, microphone (?P<mic>-?[\d.]+|-inf) dBFS, "
    r"sent (?P<sent>-?[\d.]+|-inf) dBFS, reduced (?P<reduced>-?[\d.]+|inf|n/a) dB")


def dbfs(energy: float, samples: int) -> float:
    """Level of ``samples`` samples with this summed squared amplitude, in dB below full scale."""
    if samples <= 0 or energy <= 0:
        return -math.inf
    return 10 * math.log10(energy / samples / FULL_SCALE ** 2)


class EchoMeter:
    """Sums the microphone's and the sent signal's energy over frames that follow far-end sound."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._far_until = -math.inf  # captured frames before this moment may hold echo
        self.reset()

    def reset(self) -> None:
        self.started = self.clock()
        self.far_s = 0.0
        self.mic_energy = self.sent_energy = 0.0
        self.samples = 0

    def far_end(self, samples: np.ndarray) -> None:
        level = dbfs(_energy(samples), samples.size)
        if level > FAR_END_ACTIVE_DBFS:
            with self._lock:
                self._far_until = self.clock() + samples.size / SAMPLE_RATE + ECHO_TAIL_S

    def captured(self, microphone: np.ndarray, sent: np.ndarray) -> None:
        with self._lock:
            if self.clock() >= self._far_until:
                return
            self.far_s += microphone.size / SAMPLE_RATE
            self.mic_energy += _energy(microphone)
            self.sent_energy += _energy(sent)
            self.samples += microphone.size

    def line(self) -> str:
        """This window's report line; starts the next window."""
        with self._lock:
            window = self.clock() - self.started
            mic, sent = dbfs(self.mic_energy, self.samples), dbfs(self.sent_energy, self.samples)
            far_s = self.far_s
            self.reset()
        # Nothing heard at all (silent microphone) leaves nothing to reduce either.
        reduced = "n/a" if not far_s or mic == -math.inf else f"{mic - sent:.1f}"
        return (f"echo report: {window:.1f} s, far end {far_s:.1f} s, microphone {mic:.1f} dBFS, "
                f"sent {sent:.1f} dBFS, reduced {reduced} dB")


class ReportingEchoCanceller(EchoCanceller):
    """The echo canceller, logging an :class:`EchoMeter` line every ``report_s`` seconds of capture."""

    def __init__(self, *, report_s: float, clock: Callable[[], float] = time.monotonic, **options) -> None:
        super().__init__(**options)
        self.report_s = report_s
        self.meter = EchoMeter(clock)
        self._captured_at = -math.inf

    def far_end(self, frame) -> None:
        super().far_end(frame)
        samples = frame if isinstance(frame, np.ndarray) else frame.to_ndarray()
        self.meter.far_end(np.asarray(samples).reshape(-1))

    def process(self, samples: np.ndarray) -> np.ndarray:
        out = super().process(samples)
        if self.bypassed:
            return out
        now = self.meter.clock()
        # A new call (the microphone only runs in calls): a new window. Not after a mere stall of the
        # capture thread: a busy unit may leave it waiting a second or more.
        if now - self._captured_at > NEW_CALL_GAP_S:
            self.meter.reset()
        self._captured_at = now
        self.meter.captured(np.asarray(samples).reshape(-1), out)
        if now - self.meter.started >= self.report_s:
            # What the canceller was fed meanwhile after it: underruns, overruns, the far end's lead.
            log.info("%s; %s", self.meter.line(), self.streams_line())
        return out


def _energy(samples: np.ndarray) -> float:
    x = samples.astype(np.float64)
    return float(np.dot(x, x))
