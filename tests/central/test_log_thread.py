"""Central's log lines are written by a thread (central/log_thread.py): the same lines, in order, with the
traceback and with the client addresses removed, none lost when central stops, and soon after they are logged."""
from __future__ import annotations

import io
import logging
import threading
import time

from central import logfilter
from central.log_thread import logging_in_a_thread


def test_records_are_written_by_another_thread_as_before_and_all_of_them(monkeypatch):
    out = io.StringIO()
    writers = set()

    class Recording(logging.StreamHandler):
        def emit(self, record):
            writers.add(threading.get_ident())
            super().emit(record)

    handler = Recording(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [handler])
    logfilter.install()
    log = logging.getLogger("central.live.kiosk_side")
    with logging_in_a_thread():
        assert root.handlers != [handler]
        for i in range(200):
            log.warning("visit %d from 192.0.2.%d", i, i % 250)
        try:
            raise RuntimeError("failed")
        except RuntimeError:
            log.exception("message handling failed")
    assert root.handlers == [handler]
    lines = out.getvalue().splitlines()
    assert lines[0] == "WARNING central.live.kiosk_side: visit 0 from [address]"
    assert [line for line in lines if line.startswith("WARNING")] == [
        f"WARNING central.live.kiosk_side: visit {i} from [address]" for i in range(200)]
    assert "ERROR central.live.kiosk_side: message handling failed" in lines
    assert "Traceback (most recent call last):" in lines and lines[-1] == "RuntimeError: failed"
    assert writers and threading.get_ident() not in writers


def test_a_line_reaches_the_log_while_central_runs(monkeypatch):
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setLevel(logging.WARNING)
    monkeypatch.setattr(logging.getLogger(), "handlers", [handler])
    log = logging.getLogger("tests.log_thread.soon")
    log.setLevel(logging.INFO)   # setLevel, not an assignment: it also clears what loggers cached of their levels
    try:
        with logging_in_a_thread(flush_s=0.01):
            log.info("below the handler's level")
            log.warning("kiosk 7: its token is used by two connections at once")
            deadline = time.monotonic() + 5
            while not out.getvalue() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert out.getvalue() == "kiosk 7: its token is used by two connections at once\n"   # not only at the end
    finally:
        log.setLevel(logging.NOTSET)
