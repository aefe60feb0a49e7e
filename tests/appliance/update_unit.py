"""A unit for the update agent's tests: fake slots in a file, fake power, a controller that only
holds a view, and a list of what would go to central. ``boot()`` makes the agent of a fresh start."""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from appliance.controller.view import DepartmentChoice, Screen, View
from appliance.service.power import FakePower
from appliance.update.agent import AgentTimes, UpdateAgent
from appliance.update.fake_slots import FakeSlots
from appliance.update.fetch import Retry
from appliance.update.trial import Checks
from protocol import updates as u
from tests.appliance.bundle_server import PATH, TOKEN, BundleServer
from tests.polling import until

TIMES = AgentTimes(look_s=0.05, report_s=0.2, announce_s=0.1, farewell_s=0.01, slot_retry_s=0.01, retry=Retry(attempts=3, first_s=0.01, max_s=0.05))
OPEN = (DepartmentChoice("buergerbuero", "Bürgerbüro", True),)


class FakeController:
    def __init__(self) -> None:
        self.view = View(screen=Screen.IDLE, online=True, departments=OPEN)
        self.busy = False
        self.agent: UpdateAgent | None = None
        self.restarts_shown: list[str] = []

    def refresh(self, **changes) -> None:
        self.show(**changes)

    def show(self, **changes) -> None:
        self.view = dataclasses.replace(self.view, **changes)
        if self.view.restart_at:
            self.restarts_shown.append(self.view.restart_at)
        if self.agent is not None:
            self.agent.view_changed(self.view)

    async def settle(self) -> None:
        return None


def passing() -> dict:
    async def ok() -> bool:
        return True
    return {"appliance_ready": ok, "kiosk_page": ok, "central": ok}


class Unit:
    def __init__(self, tmp: Path, server: BundleServer, version: str = "1.0") -> None:
        self.times = TIMES  # a test may change them before boot()
        self.data_dir = tmp
        self.slots = FakeSlots(tmp / "slots.json", version=version)
        self.server, self.power, self.sent = server, FakePower(), []
        self.controller = FakeController()
        self.now = dt.datetime(2026, 12, 4, 20, 0, tzinfo=dt.UTC)
        self.agent: UpdateAgent | None = None

    async def send(self, msg) -> None:
        self.sent.append(msg)

    async def boot(self, checks: dict | None = None) -> UpdateAgent:
        """The appliance starts (after a reboot, or the service restarted): a new agent settles the last boot."""
        if self.agent is not None:
            await self.agent.close()
        self.sent.clear()
        self.agent = UpdateAgent(backend=self.slots, data_dir=self.data_dir, central_url=self.server.url,
                                 token=lambda: TOKEN, send=self.send, power=self.power, controller=self.controller,
                                 checks=Checks(checks or passing(), deadline_s=2), image_version="1.0",
                                 times=self.times, clock=lambda: self.now)
        self.controller.agent = self.agent
        await self.agent.run()
        return self.agent

    def offer(self, version: str = "2.0", window: str = "now", **fields) -> u.UpdateOffer:
        return u.UpdateOffer(type="update.offer", bundle_id=7, version=version, size_bytes=len(self.server.data),
                             sha256=self.server.sha256, path=PATH, window=window, **fields)

    def states(self) -> list[str]:
        return [s.state for s in self.sent]

    async def rebooted(self, times: int = 1) -> None:
        await until(lambda: len(self.power.reboots) >= times, what=f"{times} reboot(s)")

    async def reached(self, state: str, seconds: float = 10) -> u.UpdateStatus:
        return await until(lambda: next((s for s in self.sent if s.state == state), None), seconds,
                           what=f"update.status {state} (sent so far: {self.states()})")
