"""Central's log is written by a thread of its own, so the event loop never waits for the log's file or pipe.

A log line used to be written in the event loop (``logging.basicConfig``'s stream handler). When the disk
under central's log or the journal behind its pipe is slow, every visit waited for it: with another
program writing gigabytes to the same disk, a visit reached the consoles 0.6 s late at the median, with
central's CPU nearly idle (docs/benchmarks.md, "Central at scale"). Now the loop only queues each record
(formatted at once, so nothing of it changes later) and the thread writes it.
"""
from __future__ import annotations

import logging
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from logging.handlers import QueueHandler, QueueListener


@contextmanager
def logging_in_a_thread() -> Iterator[None]:
    """Within the block, the root logger's handlers are fed from a queue by a thread; afterwards they are
    back in place, with everything queued written out."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    if not handlers:
        yield
        return
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = QueueListener(records, *handlers, respect_handler_level=True)
    root.handlers = [QueueHandler(records)]
    listener.start()
    try:
        yield
    finally:
        listener.stop()   # writes what is queued, then ends the thread
        root.handlers = handlers
