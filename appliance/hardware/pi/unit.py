"""The Raspberry Pi itself: serial number, model, CPU temperature and the firmware's throttling flags.

Everything is read from the kernel's files when asked, never at import or open: the device tree
for identity, the thermal zone for temperature, the firmware driver's ``get_throttled`` for the
flags ``vcgencmd get_throttled`` prints. ``root`` moves all of them, so tests give a fake tree.
Identity that cannot be read is an error (enrolment needs it); a condition that cannot be read
is simply absent from the health report (``None`` / no flags).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from appliance.hardware.errors import UnitError
from protocol.fleet import Throttling

log = logging.getLogger(__name__)

SERIAL_FILE = "proc/device-tree/serial-number"
MODEL_FILE = "proc/device-tree/model"
TEMPERATURE_FILE = "sys/class/thermal/thermal_zone0/temp"
THROTTLED_FILE = "sys/devices/platform/soc/soc:firmware/get_throttled"

# Bits of the firmware's throttled word: these four for "now", the same shifted by 16 for
# "has happened since boot" (Raspberry Pi documentation of `vcgencmd get_throttled`).
THROTTLE_BITS: tuple[tuple[int, Throttling], ...] = (
    (0, "under_voltage"), (1, "frequency_capped"), (2, "throttled"), (3, "soft_temperature_limit"))
SINCE_BOOT_SHIFT = 16
SERIAL_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{4,64}$")  # protocol.fleet.Serial


def decode_throttled(word: int) -> tuple[list[Throttling], list[Throttling]]:
    """The flags set now and those set at any time since boot."""
    now = [flag for bit, flag in THROTTLE_BITS if word >> bit & 1]
    since = [flag for bit, flag in THROTTLE_BITS if word >> (bit + SINCE_BOOT_SHIFT) & 1]
    return now, since


class PiUnit:
    """A Raspberry Pi, read through ``root`` (``/`` on the unit)."""

    def __init__(self, root: Path | str = "/", *, serial: str | None = None) -> None:
        self.root = Path(root)
        if serial is not None and not SERIAL_PATTERN.match(serial):
            raise UnitError(f"[hardware.unit] serial = {serial[:70]!r} is not 4-64 letters, digits or ._:-")
        self._serial = serial
        self._model: str | None = None

    def _text(self, name: str) -> str:
        # Device tree strings end in a NUL byte.
        return (self.root / name).read_bytes().decode("ascii", "replace").strip("\x00 \n\t")

    @property
    def serial(self) -> str:
        if self._serial is None:
            path = self.root / SERIAL_FILE
            try:
                value = self._text(SERIAL_FILE)
            except OSError as exc:
                raise UnitError(f"cannot read the Raspberry Pi's serial number from {path} ({exc.strerror or exc}); "
                                "on other hardware set [hardware.unit] backend = \"fake\" and serial = \"…\"") from exc
            if not SERIAL_PATTERN.match(value):
                raise UnitError(f"the serial number in {path} is not 4-64 letters and digits ({value[:70]!r}); "
                                "set [hardware.unit] serial = \"…\" to the number on the unit's label")
            self._serial = value
        return self._serial

    @property
    def model(self) -> str:
        if self._model is None:
            try:
                self._model = self._text(MODEL_FILE)[:120] or "Raspberry Pi"
            except OSError as exc:
                raise UnitError(f"cannot read the hardware model from {self.root / MODEL_FILE} "
                                f"({exc.strerror or exc}): is this a Raspberry Pi?") from exc
        return self._model

    def cpu_temp_c(self) -> float | None:
        """The SoC's temperature in °C, or None where the kernel does not report one."""
        try:
            millidegrees = int(self._text(TEMPERATURE_FILE))
        except (OSError, ValueError) as exc:
            log.debug("no CPU temperature: %s", exc)
            return None
        celsius = millidegrees / 1000
        return round(celsius, 1) if -40 <= celsius <= 150 else None

    def _throttled(self) -> tuple[list[Throttling], list[Throttling]]:
        try:
            word = int(self._text(THROTTLED_FILE), 16)  # the driver prints hex, without "0x"
        except (OSError, ValueError) as exc:
            # The mainline kernel has no such file: no flags rather than a guess.
            log.debug("no throttling flags: %s", exc)
            return [], []
        return decode_throttled(word)

    def throttling(self) -> list[Throttling]:
        return self._throttled()[0]

    def throttling_since_boot(self) -> list[Throttling]:
        return self._throttled()[1]

    def close(self) -> None:
        pass


def open_unit(section: dict) -> PiUnit:
    """``[hardware.unit]``: ``serial`` overrides the device tree's (a board replaced under one label);
    ``root`` is for tests."""
    return PiUnit(section.get("root", "/"), serial=section.get("serial"))
