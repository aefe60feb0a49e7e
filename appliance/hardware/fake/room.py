"""The air between the fake speaker and the fake microphone.

On a real unit the microphone hears the loudspeaker; the self-test relies on it (a test
tone played must come back through the microphone: speaker, microphone and echo path in
one check). :class:`Room` gives the fakes the same path: the fake backend hands the
microphone's room to the speaker as its far-end hook, so every frame played is heard,
quieter, in the microphone's next frames. Nothing is kept beyond a fraction of a second.
"""
from __future__ import annotations

import collections
import threading

import av
import numpy as np

ROOM_GAIN = 0.5       # the speaker is a little away from the microphone
ROOM_SECONDS = 0.5    # at most this much sound in the air; older sound has faded
RATE = 48000


class Room:
    """Sound in flight from a speaker to a microphone (48 kHz mono s16)."""

    def __init__(self, gain: float = ROOM_GAIN) -> None:
        self.gain = gain
        self._lock = threading.Lock()  # the speaker may play on another thread than the microphone reads
        self._chunks: collections.deque[np.ndarray] = collections.deque()
        self._samples = 0

    def hear(self, frame: av.AudioFrame) -> None:
        """A frame the speaker played (the speaker's far-end hook)."""
        samples = frame.to_ndarray().reshape(-1).astype(np.float32) * self.gain
        with self._lock:
            self._chunks.append(samples)
            self._samples += samples.size
            while self._samples - self._chunks[0].size >= ROOM_SECONDS * RATE:
                self._samples -= self._chunks.popleft().size

    def take(self, count: int) -> np.ndarray:
        """The next ``count`` samples of sound reaching the microphone (silence where there is none)."""
        out = np.zeros(count, np.float32)
        filled = 0
        with self._lock:
            while filled < count and self._chunks:
                chunk = self._chunks[0]
                n = min(count - filled, chunk.size)
                out[filled:filled + n] = chunk[:n]
                filled += n
                if n == chunk.size:
                    self._chunks.popleft()
                else:
                    self._chunks[0] = chunk[n:]
                self._samples -= n
        return out
