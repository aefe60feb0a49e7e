"""sd_notify and the journal, as no-ops when not running under systemd.

systemd-python is used where installed (the image); otherwise the notify
protocol is one datagram to $NOTIFY_SOCKET, which we send ourselves, so the same
code runs on a laptop, in tests and on the Pi.
"""
from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(state: str) -> bool:
    """Send e.g. "READY=1" or "WATCHDOG=1"; False when there is no systemd to tell."""
    try:
        from systemd import daemon  # type: ignore[import-not-found]
        return bool(daemon.notify(state))
    except ImportError:
        pass
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    # Never blocks: this runs on the event loop, and a notify socket whose queue is full
    # must not wedge the appliance (a lost WATCHDOG=1 is followed by the next one).
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        try:
            s.connect(address)
            s.send(state.encode())
        except (BlockingIOError, ConnectionRefusedError, FileNotFoundError):
            log.warning("systemd did not take %s", state.split("=", 1)[0])
            return False
    return True


# The most one step of the appliance's start may take: TimeoutStartSec= of amtsklingel-appliance.service.
START_STEP_S = 120


def starting(step: str) -> bool:
    """A step of the start is done: systemd waits up to START_STEP_S for the next one, and ``systemctl
    status`` says how far the start got.

    A start is mostly importing libraries (numpy, av, aiortc, pydantic's models), seconds on a Pi 4 but
    minutes on a first boot from a slow SD card or on an emulated CPU, while everything else starts too.
    One limit for the whole start either kills a slow start that was getting on (its restart begins
    again, only with a warmer page cache) or waits as long for a hung one; so TimeoutStartSec= limits
    each step instead (EXTEND_TIMEOUT_USEC after each), and a step that hangs is still killed."""
    return notify(f"EXTEND_TIMEOUT_USEC={START_STEP_S * 1_000_000}\nSTATUS=starting: {step}")


def watchdog_interval_s() -> float | None:
    """Half of WatchdogSec as systemd passes it (WATCHDOG_USEC), or None without a watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or os.environ.get("WATCHDOG_PID", str(os.getpid())) != str(os.getpid()):
        return None
    return int(usec) / 2 / 1_000_000


# ICE libraries that log the peers' addresses and ports (candidate pairs, TURN allocations) at
# INFO; addresses are personal data and stay out of the journal (docs/decisions/0003).
QUIET_LOGGERS = ("aioice", "aiortc")


def setup_logging(level: int = logging.INFO) -> None:
    """To the journal with structured fields when available, else to stderr (which journald also reads).

    The ICE libraries only say what went wrong (WARNING and above), never whom a call reached."""
    try:
        from systemd.journal import JournalHandler  # type: ignore[import-not-found]
        handler: logging.Handler = JournalHandler(SYSLOG_IDENTIFIER="amtsklingel-appliance")
    except ImportError:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
