"""A screen that remembers what it was told: brightness, on or off, and in which order."""
from __future__ import annotations

from appliance.hardware.errors import DeviceUsageError, DisplayError


class FakeDisplay:
    """``history`` lists every change as ("brightness", pct) or ("power", on); ``fail()`` makes the
    next changes raise as a backlight whose driver went away."""

    name = "fake screen"

    def __init__(self) -> None:
        self.brightness_pct = 100
        self.on = True
        self.history: list[tuple[str, int | bool]] = []
        self.broken = False

    def set_brightness(self, pct: int) -> None:
        if isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100:
            raise DeviceUsageError(f"brightness must be a whole percentage from 0 to 100, not {pct!r}")
        self._check()
        self.brightness_pct = pct
        self.history.append(("brightness", pct))

    def set_power(self, on: bool) -> None:
        self._check()
        if on != self.on:
            self.on = on
            self.history.append(("power", on))

    def fail(self) -> None:
        self.broken = True

    def repair(self) -> None:
        self.broken = False

    def _check(self) -> None:
        if self.broken:
            raise DisplayError("fake screen told to fail: its backlight takes no changes")

    def close(self) -> None:
        pass


def open_display(section: dict) -> FakeDisplay:
    return FakeDisplay()
