"""What central knows about each kiosk right now: online or not, its last health report and self-test.

Kept in memory and fed by the kiosk's WebSocket (``FleetRegistry.kiosk_message``); the hub hands
over every fleet message it receives. Only codes and measurements, never personal data.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from protocol import fleet as f
from protocol import messages as m

log = logging.getLogger(__name__)


@dataclass
class KioskState:
    """One kiosk as the fleet page shows it."""

    kiosk_id: int
    online: bool = False
    since: float = 0.0                       # unix seconds: connected, or went offline
    health: f.KioskHealth | None = None
    health_at: float | None = None
    selftest: f.SelftestReport | None = None
    selftest_at: float | None = None
    settings_applied: int = 0                # the settings version the kiosk acknowledged
    action_results: dict[str, str] = field(default_factory=dict)  # action id -> outcome
    device_faults: dict[tuple[str, str], int] = field(default_factory=dict)  # (device, fault) -> count


@dataclass
class FleetRegistry:
    clock: Callable[[], float] = time.time
    kiosks: dict[int, KioskState] = field(default_factory=dict)

    def state(self, kiosk_id: int) -> KioskState:
        if (found := self.kiosks.get(kiosk_id)) is None:
            found = self.kiosks[kiosk_id] = KioskState(kiosk_id)
        return found

    def connected(self, kiosk_id: int) -> None:
        state = self.state(kiosk_id)
        state.online, state.since = True, self.clock()

    def disconnected(self, kiosk_id: int) -> None:
        state = self.state(kiosk_id)
        state.online, state.since = False, self.clock()

    def kiosk_message(self, kiosk_id: int, msg: m.Message) -> None:
        state, now = self.state(kiosk_id), self.clock()
        if isinstance(msg, f.KioskHealth):
            state.health, state.health_at = msg, now
        elif isinstance(msg, f.SelftestReport):
            state.selftest, state.selftest_at = msg, now
        elif isinstance(msg, f.SettingsApplied):
            state.settings_applied = msg.version
        elif isinstance(msg, f.ActionResult):
            state.action_results[msg.action_id] = msg.outcome
        elif isinstance(msg, f.DeviceFault):
            key = (msg.device, msg.fault)
            state.device_faults[key] = state.device_faults.get(key, 0) + 1
            log.warning("kiosk %d reports %s: %s", kiosk_id, msg.device, msg.fault)
