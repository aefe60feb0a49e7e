"""Central's log is written by a thread of its own, so the event loop never waits for the log's file or pipe.

A log line used to be written in the event loop (``logging.basicConfig``'s stream handler). When the disk
under central's log or the journal behind its pipe is slow, every visit waited for it: with another
program writing gigabytes to the same disk, a visit reached the consoles 0.6 s late at the median, with
central's CPU nearly idle (docs/benchmarks.md, "Central at scale"). Now the loop only queues each record
(formatted at once, so nothing of it changes later) and the thread writes it.

The thread is not woken for each record: it takes what has been queued every ``FLUSH_S``. Waking it per
record cost the event loop a tenth of its time at 500 visits a second (two lines each): every wake-up is a
futex call, on a virtual machine an interrupt to the other CPU, and a hand-over of the interpreter lock.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from logging.handlers import QueueHandler

FLUSH_S = 0.05   # a line reaches the log at most this much later than it was logged


class _Records:
    """What the QueueHandler puts records into; appending wakes nobody."""

    def __init__(self) -> None:
        self._queued: deque[logging.LogRecord] = deque()

    def put_nowait(self, record: logging.LogRecord) -> None:
        self._queued.append(record)

    def write_to(self, handlers: list[logging.Handler]) -> None:
        """Everything queued so far, in order, to each handler whose level it reaches."""
        while self._queued:
            record = self._queued.popleft()
            for handler in handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)


@contextmanager
def logging_in_a_thread(flush_s: float = FLUSH_S) -> Iterator[None]:
    """Within the block, the root logger's handlers are fed from a queue by a thread; afterwards they are
    back in place, with everything queued written out."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    if not handlers:
        yield
        return
    records = _Records()
    stopping = threading.Event()

    def write() -> None:
        while not stopping.wait(flush_s):
            records.write_to(handlers)
        records.write_to(handlers)

    writer = threading.Thread(target=write, name="central-log", daemon=True)
    root.handlers = [QueueHandler(records)]
    writer.start()
    try:
        yield
    finally:
        stopping.set()
        writer.join()
        root.handlers = handlers
        records.write_to(handlers)   # what another thread logged after the writer's last turn, if anything
