"""The update agent's parts for one appliance: its slot backend and its trial's health checks.

``[update] backend = "rauc"`` on a unit (the image's appliance.toml), ``"fake"`` for the demo and
test set-ups (slots in ``data_dir/fake-slots.json``); none: no updates.
"""
from __future__ import annotations

import asyncio
import logging

import aiohttp

from appliance.config import ApplianceConfig
from appliance.update.fake_slots import FakeSlots
from appliance.update.rauc import RaucSlots
from appliance.update.slots import SlotBackend
from appliance.update.trial import Check, Checks
from protocol.updates import HealthCheck

log = logging.getLogger(__name__)

FAKE_STATE = "fake-slots.json"
DEVICE_S = 10.0  # the first picture or sound must come within this


def open_slots(config: ApplianceConfig, version: str) -> SlotBackend | None:
    backend = config.update.get("backend")
    if backend == "rauc":
        return RaucSlots()
    if backend == "fake":
        return FakeSlots(config.data_dir / FAKE_STATE, version=version)
    return None


def trial_checks(config: ApplianceConfig, appliance) -> Checks:  # noqa: ANN001 - service.main.Appliance
    """appliance_ready, kiosk_page, central; camera and microphone only where they are real (pi)."""
    async def appliance_ready() -> bool:
        handled = asyncio.Event()
        appliance.controller.post("tick", handled)  # the watchdog's probe: the controller handles events
        await handled.wait()
        return True

    async def kiosk_page() -> bool:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async with http.get(appliance.page_url) as r:
                return r.status == 200

    async def central() -> bool:
        await appliance.session.connected.wait()  # the welcome came
        return True

    def device(name: str) -> Check:
        async def first_frame() -> bool:
            track = getattr(appliance.hardware, name).track()
            try:
                async with asyncio.timeout(DEVICE_S):
                    await track.recv()
                return True
            finally:
                track.stop()
        return first_frame

    checks: dict[HealthCheck, Check] = {"appliance_ready": appliance_ready, "kiosk_page": kiosk_page,
                                        "central": central}
    if config.hardware.get("backend") == "pi":
        checks.update(camera=device("camera"), microphone=device("microphone"))
    return Checks(checks, deadline_s=float(config.update.get("trial_deadline_s", 180)))
