"""What the echo canceller was fed, window by window: enough to tell why it lost its grip.

AEC3 finds the echo by its delay behind the far end. That delay stays put only while the far end
the canceller gets is what the speaker's device plays, sample for sample, and the microphone's frames
follow its device without a hole. On a busy unit neither is a given: the speaker's device runs dry
(an underrun: it plays silence nobody wrote), the microphone's overflows (an overrun: captured sound
is lost), and the two threads hand their frames over in bursts. These counters say how often each
happened in a window, how much sound it concerned, and how far the far end ran ahead of the
microphone (its lead; a lead that moves is a delay the canceller has to find again). The echo report
(appliance/hardware/echo_report.py) logs them beside its ERLE; the boot test prints them per window.
"""
from __future__ import annotations

import math

from appliance.hardware.resample import RATE


class StreamCounters:
    """Counted under the canceller's lock; :meth:`line` reads and starts the next window."""

    def __init__(self) -> None:
        self.far_total = 0   # far-end samples taken in all (after drift resampling)
        self.mic_total = 0   # microphone samples taken in all
        self._window()

    def _window(self) -> None:
        self.underruns = self.silence = 0   # speaker: times its device ran dry; silence it played unasked
        self.overruns = self.lost = 0       # microphone: times its device overflowed; samples lost
        self.far = self.mic = 0
        self.lead_min, self.lead_max = math.inf, -math.inf
        self.far_burst = self.mic_burst = 0  # the most of one side taken while the other gave nothing
        self._far_run = self._mic_run = 0
        self.note = ""  # what the canceller's alignment made of it (set by the canceller)

    def far_end(self, samples: int) -> None:
        self.far += samples
        self.far_total += samples
        self._far_run += samples
        self._mic_run = 0
        self.far_burst = max(self.far_burst, self._far_run)

    def microphone(self, samples: int, lead: int) -> None:
        """``lead``: far end waiting for the microphone's samples (negative: owed; echo_align.py)."""
        self.mic += samples
        self.mic_total += samples
        self._mic_run += samples
        self._far_run = 0
        self.mic_burst = max(self.mic_burst, self._mic_run)
        self.lead_min, self.lead_max = min(self.lead_min, lead), max(self.lead_max, lead)

    def speaker_silence(self, samples: int) -> None:
        self.underruns += 1
        self.silence += samples

    def microphone_lost(self, samples: int) -> None:
        self.overruns += 1
        self.lost += samples

    def line(self, ppm: float | None = None, estimate_ppm: float | None = None) -> str:
        """E.g. "speaker underruns 3 (412 ms of silence not in the far end), microphone overruns 0 (0 ms lost),
        far end 4980 ms, microphone 5000 ms, far end's lead 180..420 ms, bursts far end 240 ms, microphone
        340 ms, clocks +0 ppm (fit +3)"."""
        ms = lambda samples: f"{samples * 1000 / RATE:.0f}"  # noqa: E731
        lead = f"{ms(self.lead_min)}..{ms(self.lead_max)}" if self.mic else "n/a"
        clocks = "off" if ppm is None else f"{ppm:+.0f} ppm (fit {'n/a' if estimate_ppm is None else f'{estimate_ppm:+.0f}'})"
        text = (f"speaker underruns {self.underruns} ({ms(self.silence)} ms of silence not in the far end), "
                f"microphone overruns {self.overruns} ({ms(self.lost)} ms lost), far end {ms(self.far)} ms, "
                f"microphone {ms(self.mic)} ms, far end's lead {lead} ms, bursts far end {ms(self.far_burst)} ms, "
                f"microphone {ms(self.mic_burst)} ms, clocks {clocks}" + (f", {self.note}" if self.note else ""))
        self._window()
        return text
