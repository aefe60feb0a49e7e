"""Notices a camera, microphone or speaker that is unplugged, and takes it back once it is plugged in.

A call notices a device that fails under it (appliance/call/devices.py); between calls nothing reads
the devices, so a USB speakerphone pulled out at night would only show at the next citizen's call.
This watch asks each device ``present()`` every ``POLL_S`` seconds (a look into /proc/asound or at a
device node: cheap, and no busy loop). When a device goes, the device book marks it ``missing``
(the health report tells central at once) and the controller shows the fault screen between
visits; when it is back, a speaker is reopened, the book marks it working and the kiosk takes
citizens again. Devices without ``present()`` (a camera that cannot tell) are not watched.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from appliance.fleet.devices import DeviceBook
from appliance.hardware.errors import HardwareError
from appliance.selftest.runner import device_name

log = logging.getLogger(__name__)

POLL_S = 2.0
WATCHED = ("camera", "microphone", "speaker")
MISSING = {"camera": "camera_missing", "microphone": "microphone_missing", "speaker": "speaker_missing"}


class DeviceWatch:
    """``post("device", (device, present))`` to the controller (in the event loop) whenever a device goes
    or comes back."""

    def __init__(self, hardware: Any, book: DeviceBook, post: Callable[[str, Any], None], *,
                 interval_s: float = POLL_S) -> None:
        self.hardware, self.book, self.post, self.interval_s = hardware, book, post, interval_s
        self.missing: set[str] = set()

    def check(self) -> list[tuple[str, bool]]:
        """One look at every watched device: what went or came back, as ``(device, present)``. Any thread:
        it runs off the event loop, as reopening a device may block on the sound card."""
        changes = []
        for device in WATCHED:
            thing = getattr(self.hardware, device, None)
            present = getattr(thing, "present", None)
            if present is None:
                continue
            try:
                here = bool(present())
            except Exception:  # noqa: BLE001 - a broken probe must not stop watching the others
                log.exception("could not tell whether the %s is there", device)
                continue
            if not here and device not in self.missing:
                self.missing.add(device)
                log.warning("the %s (%s) is gone: unplugged? The kiosk takes it back once it is plugged in",
                            device, device_name(thing))
                self.book.fault(device, MISSING[device], state="missing")
                changes.append((device, False))
            elif here and device in self.missing and self._reopened(device, thing):
                self.missing.discard(device)
                log.info("the %s (%s) is back", device, device_name(thing))
                self.book.ok(device, "live", name=device_name(thing))
                changes.append((device, True))
        return changes

    def _reopened(self, device: str, thing: Any) -> bool:
        reopen = getattr(thing, "reopen", None)
        if reopen is None:
            return True  # opened afresh for each call anyway
        try:
            reopen()
        except HardwareError as exc:
            log.info("the %s is there but does not open yet (%s); trying again", device, exc)
            return False
        return True

    async def run(self) -> None:
        while True:
            for change in await asyncio.to_thread(self.check):
                self.post("device", change)
            await asyncio.sleep(self.interval_s)
