"""The microphone's sound between the thread that reads the device and the one that cancels its echo.

Both used to be one thread. On a busy unit (the boot test's emulated CPU, 96 % busy) it came back to the
device too late, again and again: the device overflowed twice a second and lost most of the sound
(docs/benchmarks.md, boot test runs 9-10), and how much it lost each time the canceller could only
estimate from the clock, which throws its pairing of far end and microphone off (echo_align.py). Now the
reading thread only reads and queues 20 ms frames here (cheap); the other thread takes them, cancels the
echo and hands them to the call. If that thread falls behind by more than :data:`MAX_BACKLOG` frames, the
oldest are skipped in one go, all but the newest, and the canceller is told exactly how many samples: a
hole it can count, once, instead of many it would have to guess.
"""
from __future__ import annotations

import collections
import threading

MAX_BACKLOG = 15  # 20 ms frames: 300 ms behind at most


class Backlog:
    """Frames (bytes) in the order read, and between them the samples a device overrun lost (int)."""

    def __init__(self, frame_samples: int) -> None:
        self._frame = frame_samples
        self._items: collections.deque[bytes | int] = collections.deque()
        self._frames = 0
        self._cond = threading.Condition()
        self.skipped = 0  # frames skipped here in all

    def put(self, item: bytes | int) -> None:
        with self._cond:
            self._items.append(item)
            if not isinstance(item, int):
                self._frames += 1
            self._cond.notify()

    def take(self, timeout: float) -> list[bytes | int]:
        """What waits, in order (empty after ``timeout`` without any); too much behind: one hole (an int)
        for all but the newest frame."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            items = list(self._items)
            self._items.clear()
            frames, self._frames = self._frames, 0
        if frames <= MAX_BACKLOG:
            return items
        lost, kept, seen = 0, [], 0
        for item in items:
            if isinstance(item, int):
                lost += item
            elif seen < frames - 1:
                seen += 1
                lost += self._frame
                self.skipped += 1
            else:
                kept.append(item)
        return [lost, *kept]
