"""Rebooting the unit, when central asks for it (``kiosk.action`` ``reboot``).

``systemctl reboot`` asks logind, which lets the appliance's user do it through the image's
polkit rule (image/config/polkit.rules). With fake hardware (test set-ups, the demo) the
``FakePower`` only records the request: a test must never reboot the machine it runs on.
"""
from __future__ import annotations

import asyncio
import logging
import time

from protocol.errors import AmtsklingelError

log = logging.getLogger(__name__)

REBOOT_COMMAND = ("systemctl", "reboot")
REBOOT_TIMEOUT_S = 30.0


class PowerError(AmtsklingelError, OSError):
    """The unit could not be rebooted."""


class SystemdPower:
    def __init__(self, command: tuple[str, ...] = REBOOT_COMMAND) -> None:
        self.command = command

    async def reboot(self, why: str = "central asked for it") -> None:
        log.warning("rebooting the unit: %s", why)
        try:
            proc = await asyncio.create_subprocess_exec(*self.command, stdin=asyncio.subprocess.DEVNULL,
                                                        stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.PIPE)
            async with asyncio.timeout(REBOOT_TIMEOUT_S):
                _, err = await proc.communicate()
        except (OSError, TimeoutError) as exc:
            raise PowerError(f"{' '.join(self.command)} could not run: {exc}") from exc
        if proc.returncode != 0:
            raise PowerError(f"{' '.join(self.command)} failed ({proc.returncode}): "
                             f"{err.decode(errors='replace').strip()[:200]}; check image/config/polkit.rules")


class FakePower:
    """Records reboots instead of doing them; ``fail()`` makes the next ones fail."""

    def __init__(self) -> None:
        self.reboots: list[float] = []
        self.broken = False

    async def reboot(self, why: str = "central asked for it") -> None:
        if self.broken:
            raise PowerError("fake power told to fail")
        self.reboots.append(time.time())
        log.warning("reboot requested: %s (fake hardware: not rebooting)", why)

    def fail(self) -> None:
        self.broken = True


def open_power(hardware_config: dict) -> SystemdPower | FakePower:
    return FakePower() if hardware_config.get("backend") == "fake" else SystemdPower()


def open_update_power(update_config: dict, power: SystemdPower | FakePower) -> SystemdPower | FakePower:
    """What restarts the unit into an installed update. With RAUC's real slots that is the machine
    itself, even where the devices are fake (a unit under QEMU): the boot loader switches slots only
    on a real restart, and a trial that fails must restart into the old slot."""
    return SystemdPower() if update_config.get("backend") == "rauc" else power
