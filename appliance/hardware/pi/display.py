"""The touchscreen's backlight through sysfs: brightness and power (screen off outside office hours).

Linux exposes each backlight as ``/sys/class/backlight/<name>/`` with ``brightness`` (0 to
``max_brightness``) and ``bl_power`` (0 on, 4 off; FB_BLANK_UNBLANK / FB_BLANK_POWERDOWN). The
official Raspberry Pi touchscreens have one; an HDMI monitor has none, and then the settings
have nothing to change: that is logged once, not an error. udev gives the appliance's group
write access (udev/72-amtsklingel-access.rules).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from appliance.hardware.errors import DeviceUsageError, DisplayError

log = logging.getLogger(__name__)

BACKLIGHTS = Path("/sys/class/backlight")
POWER_ON, POWER_OFF = "0", "4"


class BacklightDisplay:
    def __init__(self, backlight: Path | None) -> None:
        self.backlight = backlight
        self.name = backlight.name if backlight else "no backlight"
        self.max_brightness = int(_read(backlight / "max_brightness")) if backlight else 0
        if backlight is None:
            log.info("no backlight under %s: screen brightness and power settings have no effect", BACKLIGHTS)

    def set_brightness(self, pct: int) -> None:
        if isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100:
            raise DeviceUsageError(f"brightness must be a whole percentage from 0 to 100, not {pct!r}")
        if self.backlight is not None:
            # Never 0 when asked for more than 0: on many panels 0 is as dark as off.
            level = max(1 if pct else 0, round(self.max_brightness * pct / 100))
            _write(self.backlight / "brightness", str(level))

    def set_power(self, on: bool) -> None:
        if self.backlight is not None:
            _write(self.backlight / "bl_power", POWER_ON if on else POWER_OFF)

    def close(self) -> None:
        pass


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise DisplayError(f"cannot read {path}: {exc.strerror}") from None


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise DisplayError(f"cannot write {path}: {exc.strerror}; is udev/72-amtsklingel-access.rules "
                           "installed?") from None


def open_display(section: dict, *, root: Path = BACKLIGHTS) -> BacklightDisplay:
    """The backlight named in ``[hardware.display] backlight``, else the first one found, else none."""
    root = Path(section.get("root", root))
    name = section.get("backlight")
    if name is not None:
        path = root / name
        if not (path / "brightness").exists():
            raise DisplayError(f"[hardware.display] backlight = {name!r}: there is no {path}/brightness")
        return BacklightDisplay(path)
    found = sorted(p for p in root.glob("*") if (p / "brightness").exists()) if root.is_dir() else []
    if found and not os.access(found[0] / "brightness", os.W_OK):
        # Not a settings problem: an image without the udev rule or the service's ReadWritePaths=.
        # Said once here; central's other settings must not be refused for it.
        log.error("%s is not writable for the appliance: screen brightness and power settings have no effect; "
                  "check udev/72-amtsklingel-access.rules and ReadWritePaths= of the appliance service", found[0])
        return BacklightDisplay(None)
    return BacklightDisplay(found[0] if found else None)
