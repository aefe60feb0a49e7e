"""The kiosk's health report (``kiosk.health``): every 30 s, and soon after a device changes state.

The reporter only reads: the device book (self-test and live use write it), the unit (temperature,
throttling), the data partition, the session's round trip, the image's version and slot. It sends
through the session, whose sends are queued and bounded, so it never holds up the controller.
Reports after a change are spaced by ``min_gap_s``: a self-test that sets four devices in a row
makes one report, and central's limit on report floods is never reached by a healthy kiosk.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from appliance.fleet.devices import DeviceBook
from appliance.fleet.image import ImageInfo
from appliance.hardware.interfaces import Unit
from protocol import messages as m
from protocol.fleet import FaultCode, KioskHealth

log = logging.getLogger(__name__)

INTERVAL_S = 30.0
MIN_GAP_S = 5.0
MAX_UPTIME_S = 10 * 365 * 86400
DATA_FULL_FRACTION = 0.95  # beyond this the unit may fail to store its settings or token
OVERHEAT_C = 80.0  # the Pi firmware's soft temperature limit

Send = Callable[[m.Message], Awaitable[None]]
Wait = Callable[[asyncio.Event, float], Awaitable[None]]


def read_uptime(path: Path = Path("/proc/uptime")) -> int:
    try:
        return min(MAX_UPTIME_S, int(float(path.read_text().split()[0])))
    except (OSError, ValueError, IndexError):
        return 0


def data_use(data_dir: Path) -> tuple[int | None, int | None]:
    """Bytes used and in total on the file system holding ``data_dir`` (None, None where it is absent)."""
    try:
        st = os.statvfs(data_dir)
    except OSError:
        return None, None
    total = st.f_blocks * st.f_frsize
    return (st.f_blocks - st.f_bfree) * st.f_frsize, total


async def wait_or_wake(wake: asyncio.Event, timeout_s: float) -> None:
    # Not asyncio.wait_for: on Python 3.11 it swallows a cancel that arrives just as the event is set,
    # and the service's shutdown would wait for this task forever.
    try:
        async with asyncio.timeout(timeout_s):
            await wake.wait()
    except TimeoutError:
        pass


class HealthReporter:
    """Builds and sends ``kiosk.health``; ``settings_version()`` is the version of central's settings in use."""

    def __init__(self, *, send: Send, book: DeviceBook, unit: Unit, data_dir: Path | str, image: ImageInfo,
                 rtt_ms: Callable[[], float | None] = lambda: None, online: Callable[[], bool] = lambda: True,
                 settings_version: Callable[[], int] = lambda: 0,
                 interval_s: float = INTERVAL_S, min_gap_s: float = MIN_GAP_S,
                 clock: Callable[[], float] = time.monotonic, uptime: Callable[[], int] = read_uptime,
                 wait: Wait = wait_or_wake) -> None:
        self._send, self.book, self.unit, self.data_dir, self.image = send, book, unit, Path(data_dir), image
        self._rtt_ms, self._online, self._settings_version = rtt_ms, online, settings_version
        self.interval_s, self.min_gap_s = interval_s, min_gap_s
        self._clock, self._uptime, self._wait = clock, uptime, wait
        self._last_sent: float | None = None
        self._pending = False  # something changed since the last report
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conditions: set[FaultCode] = set()  # unit conditions already counted as faults
        self._fresh_connection = False

    # -- what others call -----------------------------------------------------------------------
    def changed(self) -> None:
        """A device changed state, the connection came up, settings were applied: report soon.
        Safe from any thread (the device book's writers)."""
        self._pending = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            if asyncio.get_running_loop() is loop:
                self._wake.set()
                return
        except RuntimeError:
            pass
        loop.call_soon_threadsafe(self._wake.set)

    def connected(self) -> None:
        """A new connection to central: report soon, without the round-trip ping this once. The
        kiosk's controller speaks first on a new connection (a ``ping`` from it tells central the unit
        has no visit to resume), so nothing else may send one before it."""
        self._fresh_connection = True
        self.changed()

    def report(self) -> KioskHealth:
        """The report as of now (also counts unit conditions like overheating as faults, once each)."""
        temp = self.unit.cpu_temp_c()
        throttling, since_boot = self.unit.throttling(), self.unit.throttling_since_boot()
        used, total = data_use(self.data_dir)
        self._count_conditions({
            "overheated": (temp is not None and temp >= OVERHEAT_C) or "soft_temperature_limit" in throttling,
            "under_voltage": "under_voltage" in throttling,
            "data_partition_full": bool(total) and used / total >= DATA_FULL_FRACTION,
        })
        rtt = self._rtt_ms()
        return KioskHealth(
            type="kiosk.health", version=self.image.version, slot=self.image.slot, uptime_s=self._uptime(),
            boot_reason=self.image.boot_reason, devices=self.book.snapshot(), cpu_temp_c=temp,
            throttling=throttling, throttling_since_boot=since_boot, data_used_bytes=used, data_total_bytes=total,
            rtt_ms=None if rtt is None else min(rtt, 600_000.0), faults=self.book.recent_faults(),
            settings_version=self._settings_version())

    def _count_conditions(self, now: dict[FaultCode, bool]) -> None:
        for code, present in now.items():
            if present and code not in self._conditions:
                self._conditions.add(code)
                self.book.fault(None, code)  # counted when it starts, not at every report while it lasts
            elif not present:
                self._conditions.discard(code)

    # -- the loop ----------------------------------------------------------------------------------
    def next_delay(self) -> float:
        """Seconds until the next report is due (0: now)."""
        if self._last_sent is None:
            return 0.0
        gap = self.min_gap_s if self._pending else self.interval_s
        return max(0.0, self._last_sent + gap - self._clock())

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            online = self._online()
            delay = self.next_delay() if online else self.interval_s  # offline: until changed() wakes it
            if delay > 0 or not online:
                await self._wait(self._wake, delay)
                self._wake.clear()
                continue
            await self.send_now()

    async def send_now(self) -> None:
        self._last_sent = self._clock()
        try:
            report = self.report()
        except Exception:
            # A broken reading must not end the reports: the next one may work, and a missing
            # report shows on the fleet page anyway.
            log.exception("building the health report failed")
            return
        finally:
            self._pending = False  # after report(): a fault it counted is in this report already
        if not self._fresh_connection:  # the ping measures the round trip for the next report
            await self._send(m.Ping(type="ping"))
        self._fresh_connection = False
        await self._send(report)
