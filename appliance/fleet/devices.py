"""What the kiosk knows about its camera, microphone, speaker and call button.

The self-test and live use (a call whose camera fails) write here; the health reporter reads a
snapshot for each ``kiosk.health`` and sends one at once when ``on_change`` fires. A device's state
is whatever was learned last, from either source. Faults are counted by code (and device), never
with more detail: a free text could carry personal data.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.hardware.errors import DeviceUsageError
from protocol.fleet import DEVICES, FAULT_CODES, MAX_RECENT_FAULTS, Device, DeviceHealth, FaultCode, RecentFault

log = logging.getLogger(__name__)

MAX_COUNT = 1_000_000  # protocol.fleet.RecentFault.count
MAX_AGE_S = 10 * 365 * 86400
STATES = ("ok", "failed", "missing", "unknown")
SOURCES = ("selftest", "live", "none")
UNKNOWN = DeviceHealth(state="unknown", source="none")


@dataclass
class _Counted:
    code: FaultCode
    device: Device | None
    count: int
    last: float  # the book's clock
    order: int  # breaks ties of ``last``: which was seen later


class DeviceBook:
    """Device states and counted faults since start.

    ``on_change()`` is called (outside the book's lock) whenever a device's state, source, fault
    or name changes, and when a fault code is seen for the first time; repeats of a known fault
    only count. Safe to write from any thread; ``on_change`` runs in the writer's thread.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[], None] | None = None) -> None:
        self.clock = clock
        self.on_change = on_change
        self._lock = threading.Lock()
        self._devices: dict[Device, DeviceHealth] = dict.fromkeys(DEVICES, UNKNOWN)
        self._faults: dict[tuple[FaultCode, Device | None], _Counted] = {}
        self._seen = 0

    # -- writing -----------------------------------------------------------------------------------
    def set(self, device: Device, state: str, source: str, fault: FaultCode | None = None,
            name: str | None = None) -> None:
        """Record what the self-test (``source="selftest"``) or live use (``"live"``) found."""
        _check_device(device)
        if state not in STATES or source not in SOURCES:
            raise DeviceUsageError(f"device state must be one of {STATES} and source one of {SOURCES}, "
                                   f"not {state!r}/{source!r}")
        if fault is not None:
            _check_fault(fault)
        if state == "ok":
            fault = None  # a working device has no fault, whatever the caller passed
        health = DeviceHealth(state=state, source=source, fault=fault, name=name[:120] if name else None)
        with self._lock:
            changed = self._devices[device] != health
            self._devices[device] = health
        if changed:
            self._changed()

    def ok(self, device: Device, source: str, name: str | None = None) -> None:
        self.set(device, "ok", source, name=name)

    def fault(self, device: Device | None, code: FaultCode, state: str = "failed") -> None:
        """A fault seen in live use: counted, and the device (if any) marked ``state``: ``failed``, or
        ``missing`` when it is unplugged (appliance/fleet/watch.py).

        ``device=None`` for faults of the unit rather than a device (``network_down``, ``overheated``).
        """
        _check_fault(code)
        if state not in ("failed", "missing"):
            raise DeviceUsageError(f"a fault marks a device failed or missing, not {state!r}")
        if device is not None:
            _check_device(device)
        with self._lock:
            first = self._count(device, code)
            if device is not None:
                previous = self._devices[device]
                name = previous.name
                health = DeviceHealth(state=state, source="live", fault=code, name=name)
                changed = previous != health
                self._devices[device] = health
            else:
                changed = False
        log.info("fault %s%s", code, f" ({device})" if device else "")
        if first or changed:
            self._changed()

    def count(self, device: Device | None, code: FaultCode) -> None:
        """A fault that leaves the device working, only counted: e.g. ``echo_behind``, the echo canceller
        falling behind a microphone that still delivers sound. The first of its kind is reported soon;
        repeats (one per skip, several a second on a busy unit) wait for the next regular report."""
        _check_fault(code)
        if device is not None:
            _check_device(device)
        with self._lock:
            first = self._count(device, code)
        if first:
            log.info("fault %s%s (counted from now on; the device works)", code, f" ({device})" if device else "")
            self._changed()

    def _count(self, device: Device | None, code: FaultCode) -> bool:
        """Count one (under the lock); True if it is the first of its code and device."""
        self._seen += 1
        counted = self._faults.get((code, device))
        if counted is None:
            self._faults[(code, device)] = _Counted(code, device, 1, self.clock(), self._seen)
            return True
        counted.count = min(counted.count + 1, MAX_COUNT)
        counted.last, counted.order = self.clock(), self._seen
        return False

    # -- reading -----------------------------------------------------------------------------------
    def snapshot(self) -> dict[Device, DeviceHealth]:
        with self._lock:
            return dict(self._devices)

    def recent_faults(self, now: float | None = None) -> list[RecentFault]:
        """The faults seen since start, most recent first, at most as many as a report carries."""
        now = self.clock() if now is None else now
        with self._lock:
            counted = sorted(self._faults.values(), key=lambda c: (c.last, c.order), reverse=True)[:MAX_RECENT_FAULTS]
        return [RecentFault(code=c.code, device=c.device, count=c.count,
                            last_s_ago=min(MAX_AGE_S, max(0, int(now - c.last)))) for c in counted]

    def _changed(self) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change()
        except Exception:
            # A reporter's failure must not break the self-test or the call that wrote here.
            log.exception("device change listener failed")


def count_echo_behind(microphone: object, book: DeviceBook) -> bool:
    """Have ``book`` count ``echo_behind`` each time the microphone's echo canceller falls behind (a unit whose
    CPU is too busy for it); the microphone stays ``ok``. False for a microphone without a canceller."""
    if not hasattr(microphone, "on_echo_behind"):
        return False
    microphone.on_echo_behind = lambda ms: book.count("microphone", "echo_behind")
    return True


def _check_device(device: str) -> None:
    if device not in DEVICES:
        raise DeviceUsageError(f"unknown device {device!r}; devices are {', '.join(DEVICES)} (protocol.fleet)")


def _check_fault(code: str) -> None:
    if code not in FAULT_CODES:
        raise DeviceUsageError(f"unknown fault code {code!r}; add it to protocol.fleet.FaultCode first")
