"""Ending a process that has livekit's native runtime in it, without a chance of SIGABRT.

livekit's library runs a tokio runtime whose worker threads call back into Python (its log records, its
events). While the interpreter shuts down, a foreign thread that asks for the GIL is ended by
``pthread_exit``; that unwinds through livekit's ``extern "C"`` frames, and Rust aborts the whole process
("panic in a function that cannot unwind"). livekit's own teardown at exit does not stop it either:
measured on this machine's two loaded cores, 2-4 of 120 ends aborted with it, 25 % without it.

A process that loaded the library therefore leaves with ``os._exit`` once its logs and streams are
flushed: nothing of it needs the interpreter's teardown, and the appliance's journal would otherwise show a
core dump and systemd a failed unit at a plain stop.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from typing import NoReturn

LIBRARY = "livekit.rtc._ffi_client"  # imported when the native runtime has started, never before


def native_runtime_loaded() -> bool:
    return LIBRARY in sys.modules


def end_process(code: int) -> NoReturn:
    """Ends the process with ``code``: at once if livekit's runtime is in it, else the usual way."""
    if not native_runtime_loaded():
        sys.exit(code)
    # What the interpreter does first at exit, before anything is torn down: wait for the threads that are not
    # daemons, and let thread pools finish what they were given. Only the teardown after it is skipped.
    wait_for_threads = getattr(threading, "_shutdown", None)
    if wait_for_threads is not None:
        wait_for_threads()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: the reader has gone, there is nobody to tell
            pass
    os._exit(code)
