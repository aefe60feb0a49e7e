"""A made-up unit for test set-ups: a stable serial, a plausible temperature, no throttling
until a test (or the demo) says otherwise with ``overheat()`` / ``undervolt()``."""
from __future__ import annotations

import hashlib
import socket
from pathlib import Path

from appliance.hardware.errors import UnitError
from appliance.hardware.pi.unit import SERIAL_PATTERN
from protocol.fleet import Throttling

MACHINE_ID = Path("/etc/machine-id")
FAKE_MODEL = "Amtsklingel test unit (fake hardware)"
NORMAL_TEMP_C = 47.2  # a Pi 4 in a closed case, idle
OVERHEAT_TEMP_C = 82.5  # past the firmware's soft limit (80 °C)


def stable_serial(machine_id: Path = MACHINE_ID) -> str:
    """``fake-`` and 12 hex digits derived from the machine id, so the unit keeps its serial across
    restarts and two test machines differ. Without a machine id, the host name stands in."""
    try:
        seed = machine_id.read_text().strip()
    except OSError:
        seed = ""
    seed = seed or socket.gethostname()
    return "fake-" + hashlib.sha256(seed.encode()).hexdigest()[:12]


class FakeUnit:
    def __init__(self, serial: str, model: str = FAKE_MODEL) -> None:
        if not SERIAL_PATTERN.match(serial):
            raise UnitError(f"[hardware.unit] serial = {serial[:70]!r} is not 4-64 letters, digits or ._:-")
        self.serial = serial
        self.model = model
        self.temp_c: float | None = NORMAL_TEMP_C
        self.flags_now: set[Throttling] = set()
        self.flags_since_boot: set[Throttling] = set()

    # -- what tests and the demo tell it -------------------------------------------------------
    def overheat(self, temp_c: float = OVERHEAT_TEMP_C) -> None:
        self.temp_c = temp_c
        self._raise("soft_temperature_limit", "throttled")

    def undervolt(self) -> None:
        self._raise("under_voltage", "throttled")

    def recover(self) -> None:
        """Back to normal now; the since-boot flags stay, as on a Pi."""
        self.temp_c = NORMAL_TEMP_C
        self.flags_now.clear()

    def _raise(self, *flags: Throttling) -> None:
        self.flags_now.update(flags)
        self.flags_since_boot.update(flags)

    # -- the Unit interface --------------------------------------------------------------------
    def cpu_temp_c(self) -> float | None:
        return self.temp_c

    def throttling(self) -> list[Throttling]:
        return sorted(self.flags_now)

    def throttling_since_boot(self) -> list[Throttling]:
        return sorted(self.flags_since_boot)

    def close(self) -> None:
        pass


def open_unit(section: dict, *, machine_id: Path = MACHINE_ID) -> FakeUnit:
    """``[hardware.unit]``: ``serial`` and ``model`` if a test needs particular ones; ``overheat = true``
    or ``undervolt = true`` for a unit that reports it from the start (``./build.sh demo --unit hot``)."""
    unit = FakeUnit(section.get("serial") or stable_serial(machine_id), section.get("model", FAKE_MODEL))
    if section.get("overheat"):
        unit.overheat()
    if section.get("undervolt"):
        unit.undervolt()
    return unit
