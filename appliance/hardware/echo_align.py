"""The far end, kept in step with the microphone sample for sample, however the threads hand it over.

AEC3 finds the echo at a fixed delay behind the far end it was given. It counts that delay in its own
calls: render frames in, capture frames in. Fed the far end as the speaker's thread writes it and the
microphone as its thread reads it, a busy unit breaks it three ways (bench/_echo_busy.py shows each):

- the threads stall and then hand over what piled up at once: AEC3's render buffer runs over or empty,
  and it starts looking for the delay again;
- the speaker's device runs dry (an underrun) and plays silence that nobody wrote: everything after it
  is heard later than its place among the far end's samples says, by as long as the device stood;
- the microphone's device overflows (an overrun): captured sound is lost, and everything after it is
  heard earlier than its place among the microphone's samples says.

So the canceller keeps the far end here, as the speaker's device plays it (with the silence of each
underrun put in) and takes exactly one 10 ms chunk of it for each 10 ms of microphone (and skips as much
as an overrun lost): AEC3 then gets one render frame per capture frame, at a delay that stays put.
Where the microphone asks for far end that has not come yet (the speaker's device ran dry and its
writer has not said for how long), silence stands in and the queue owes what it handed out: the
same number of samples is skipped when they come, so the far end after them stays in its place.
"""
from __future__ import annotations

import collections

import numpy as np

from appliance.hardware.resample import RATE

MAX_LEAD = int(1.5 * RATE)  # far end ahead of the microphone: the speaker's buffer and a lagging capture
# Owed longer than this, the count is off (a device lost or played sound nobody could count exactly, or the
# speaker stopped between calls): rather than hand AEC3 silence for its far end for as long, the pairing
# starts afresh from what comes next, and AEC3 finds the delay again, as it does at a call's start.
MAX_OWED = RATE


class ReferenceQueue:
    """Far-end samples waiting for the microphone's samples they are paired with."""

    def __init__(self) -> None:
        self._chunks: collections.deque[np.ndarray] = collections.deque()
        self.size = 0    # samples waiting
        self.owed = 0    # samples handed out as silence before they came
        self.realigned = 0  # times the pairing was started afresh (for the echo report)
        # What the speaker's device holds, written but not yet played (its last report): on pairing afresh
        # in mid-call, what is written next plays only after that, so that much silence goes first (its
        # sound is gone from here; the canceller misses its echo once rather than taking the delay of
        # the speaker's whole buffer into its own, where AEC3 might not find it).
        self.speaker_queued = 0

    @property
    def lead(self) -> int:
        """How far the far end is ahead of the microphone, in samples (negative: owed)."""
        return self.size - self.owed

    def add(self, samples: np.ndarray) -> None:
        """The speaker's device plays these next."""
        if self.owed:
            skip = min(self.owed, samples.size)
            self.owed -= skip
            samples = samples[skip:]
        if samples.size:
            self._chunks.append(samples)
            self.size += samples.size
        if self.size > MAX_LEAD:
            # Only if the microphone stopped taking (between calls): keep the newest, pair afresh.
            self._pop(self.size - MAX_LEAD)
            self.realigned += 1

    def silence(self, samples: int | None) -> None:
        """The speaker's device played ``samples`` of silence nobody wrote (an underrun; None: it stood still
        for a time nobody measured, as before a call's first words)."""
        if samples is None or samples > MAX_OWED:
            self.clear()  # pair afresh: what comes next is played from now on
            return
        paid = min(self.owed, samples)
        self.owed -= paid
        if samples - paid:
            self.add(np.zeros(samples - paid, np.int16))

    def take(self, samples: int) -> np.ndarray:
        """The far end for the microphone's next ``samples`` (silence for what has not come yet)."""
        out = np.zeros(samples, np.int16)
        got = self._pop(samples, out)
        self.owed += samples - got
        if self.owed > MAX_OWED:
            self._afresh()
        return out

    def skip(self, samples: int) -> None:
        """The microphone lost ``samples`` (an overrun): their far end is of no use any more."""
        self.owed += samples - self._pop(samples)
        if self.owed > MAX_OWED:
            self._afresh()

    def _afresh(self) -> None:
        self.clear()
        if self.speaker_queued > 0:
            self.add(np.zeros(min(self.speaker_queued, MAX_LEAD), np.int16))

    def clear(self) -> None:
        if self.size or self.owed:
            self.realigned += 1
        self._chunks.clear()
        self.size = self.owed = 0

    def _pop(self, samples: int, into: np.ndarray | None = None) -> int:
        """Take up to ``samples`` from the front (copied into ``into`` if given); how many there were."""
        got = 0
        while got < samples and self._chunks:
            head = self._chunks[0]
            n = min(samples - got, head.size)
            if into is not None:
                into[got:got + n] = head[:n]
            got += n
            if n == head.size:
                self._chunks.popleft()
            else:
                self._chunks[0] = head[n:]
        self.size -= got
        return got
