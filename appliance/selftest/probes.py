"""The self-test's look at things other than devices: network, clock, enrolment.

Real probes read the system; fake ones (the fake hardware backend, tests, the demo) pass
until told to ``fail()``.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 3.0
# systemd-timesyncd touches this file once the clock was set from NTP (the Pi has no clock of its own).
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")


@dataclass
class Probes:
    network: Callable[[], Awaitable[bool]]   # is there a route towards central
    clock: Callable[[], Awaitable[bool]]     # has NTP set the clock
    enrolled: Callable[[], bool]             # does the unit have its token


class RouteProbe:
    """Network: central's name resolves and the kernel has a route to it.

    A UDP ``connect`` sends nothing; it only asks the kernel for a route, so this also works
    where central answers nothing but its own port.
    """

    def __init__(self, central_url: str) -> None:
        parts = urlsplit(central_url)
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)

    async def __call__(self) -> bool:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
        except (OSError, TimeoutError):
            return False
        for family, kind, proto, _, address in infos:
            try:
                with socket.socket(family, kind, proto) as probe:
                    probe.connect(address)
                return True
            except OSError:
                continue
        return False


class SystemClock:
    """Clock: systemd-timesyncd's flag file, else ``timedatectl``'s NTPSynchronized."""

    def __init__(self, flag: Path = TIMESYNC_FLAG, timedatectl: str | None = "timedatectl") -> None:
        self.flag, self.timedatectl = flag, timedatectl

    async def __call__(self) -> bool:
        if self.flag.exists():
            return True
        command = shutil.which(self.timedatectl) if self.timedatectl else None
        if command is None:
            return False
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                process = await asyncio.create_subprocess_exec(
                    command, "show", "--property=NTPSynchronized", "--value",
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
                out, _ = await process.communicate()
        except (OSError, TimeoutError):
            return False
        return out.strip() == b"yes"


class FakeProbe:
    """Passes until ``fail()``; ``repair()`` undoes it."""

    def __init__(self) -> None:
        self.broken = False

    def fail(self) -> None:
        self.broken = True

    def repair(self) -> None:
        self.broken = False

    async def __call__(self) -> bool:
        return not self.broken


def system_probes(central_url: str, enrolled: Callable[[], bool]) -> Probes:
    return Probes(network=RouteProbe(central_url), clock=SystemClock(), enrolled=enrolled)


def fake_probes(enrolled: Callable[[], bool]) -> Probes:
    return Probes(network=FakeProbe(), clock=FakeProbe(), enrolled=enrolled)
