"""The trial's checks of a new version: camera and microphone only where they are real (pi)."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiortc.mediastreams import MediaStreamError

from appliance.config import ApplianceConfig
from appliance.update.setup import trial_checks
from tests.appliance.bundle_server import TOKEN


class Track:
    def __init__(self, works: bool) -> None:
        self.works, self.stopped = works, False

    async def recv(self):
        if not self.works:
            raise MediaStreamError
        await asyncio.sleep(0)
        return object()

    def stop(self) -> None:
        self.stopped = True


def device(works: bool):
    tracks = []

    def track():
        tracks.append(Track(works))
        return tracks[-1]
    return SimpleNamespace(track=track, tracks=tracks)


def config(backend: str) -> ApplianceConfig:
    return ApplianceConfig(central_url="https://central.test", token=TOKEN, hardware={"backend": backend},
                           update={"backend": "rauc", "trial_deadline_s": 20})


async def test_the_pi_checks_camera_and_microphone_and_lets_them_go():
    camera, microphone = device(True), device(False)
    unit = SimpleNamespace(hardware=SimpleNamespace(camera=camera, microphone=microphone))
    checks = trial_checks(config("pi"), unit)
    assert list(checks.checks) == ["appliance_ready", "kiosk_page", "central", "camera", "microphone"]
    assert checks.deadline_s == 20
    checks.checks = {name: checks.checks[name] for name in ("camera", "microphone")}
    assert await checks.first_failing() == "microphone"
    assert camera.tracks[0].stopped and microphone.tracks[0].stopped


def test_fake_hardware_is_not_checked():
    assert list(trial_checks(config("fake"), SimpleNamespace()).checks) == ["appliance_ready", "kiosk_page",
                                                                            "central"]
