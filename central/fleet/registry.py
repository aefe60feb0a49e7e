"""What central knows about each kiosk right now: online or not, its last health report and self-test.

Kept in memory and fed by the kiosk's WebSocket (``FleetRegistry.kiosk_message``); the hub hands
over every fleet message it receives. Only codes and measurements, never personal data.

What must survive a restart of central (last seen, offline since, version, today's calls) is
written in batches by central/fleet/persist.py: the registry only marks a kiosk ``dirty`` when one
of those changes, so a health report costs no database write. While a kiosk stays online its row
is not rewritten: central's own heartbeat row says until when it (and so each kiosk online in
its rows) was alive.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from central.storage.fleet import FleetRow
from protocol import fleet as f
from protocol import messages as m

log = logging.getLogger(__name__)


@dataclass
class KioskState:
    """One kiosk as the fleet page shows it."""

    kiosk_id: int
    online: bool = False
    since: float | None = None               # unix seconds: connected, or went offline (None: never seen)
    last_seen: float | None = None           # unix seconds: the last time central heard from it
    version: str | None = None               # from the last health report (kept across restarts)
    health: f.KioskHealth | None = None
    health_at: float | None = None
    selftest: f.SelftestReport | None = None
    selftest_at: float | None = None
    settings_applied: int = 0                # the settings version the kiosk acknowledged
    action_results: dict[str, str] = field(default_factory=dict)  # action id -> outcome
    device_faults: dict[tuple[str, str], int] = field(default_factory=dict)  # (device, fault) -> count
    calls_day: dt.date | None = None         # the city's day that ``calls`` counts
    calls: int = 0
    last_call_at: float | None = None
    # The fleet page's lights, judged from ``lights_of`` (the health report they belong to): central/fleet/view.py
    lights: list = field(default_factory=list)
    lights_of: object = field(default=False, repr=False)

    def calls_on(self, day: dt.date) -> int:
        """Calls on ``day`` (today's count is kept only for today)."""
        return self.calls if self.calls_day == day else 0


@dataclass
class FleetRegistry:
    clock: Callable[[], float] = time.time
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Berlin"))  # the city's: "today" for calls
    kiosks: dict[int, KioskState] = field(default_factory=dict)
    # Kiosks whose persisted part changed since the last write (central/fleet/persist.py).
    dirty: set[int] = field(default_factory=set)
    # Called when a change should reach the database soon (connect, disconnect), not just eventually.
    on_urgent: Callable[[], None] | None = None

    def state(self, kiosk_id: int) -> KioskState:
        if (found := self.kiosks.get(kiosk_id)) is None:
            found = self.kiosks[kiosk_id] = KioskState(kiosk_id)
        return found

    def today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.clock(), self.zone).date()

    def connected(self, kiosk_id: int) -> None:
        state, now = self.state(kiosk_id), self.clock()
        state.online, state.since, state.last_seen = True, now, now
        self._changed(kiosk_id, urgent=True)

    def disconnected(self, kiosk_id: int) -> None:
        state, now = self.state(kiosk_id), self.clock()
        state.online, state.since, state.last_seen = False, now, now
        self._changed(kiosk_id, urgent=True)

    def kiosk_message(self, kiosk_id: int, msg: m.Message) -> None:
        state, now = self.state(kiosk_id), self.clock()
        state.last_seen = now
        if isinstance(msg, f.KioskHealth):
            if msg.version != state.version:  # after an update: the version is kept across restarts
                self.dirty.add(kiosk_id)
            state.health, state.health_at, state.version = msg, now, msg.version
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

    def call_picked_up(self, kiosk_id: int) -> None:
        """A clerk picked up a visit of this kiosk: one more call today."""
        state, now = self.state(kiosk_id), self.clock()
        today = self.today()
        if state.calls_day != today:
            state.calls_day, state.calls = today, 0
        state.calls += 1
        state.last_call_at = now
        self.dirty.add(kiosk_id)

    def _changed(self, kiosk_id: int, *, urgent: bool) -> None:
        self.dirty.add(kiosk_id)
        if urgent and self.on_urgent is not None:
            self.on_urgent()

    # -- persistence (central/fleet/persist.py) ----------------------------------
    def restore(self, rows: list[FleetRow], alive_until: float | None) -> None:
        """What an earlier central process wrote. None of these kiosks is connected to this process yet:
        one that was online then is offline since that process was last known alive (``alive_until``,
        its last heartbeat or its orderly stop; at worst a minute early after a crash)."""
        for row in rows:
            state = self.state(row.kiosk_id)
            state.online = False
            state.since, state.last_seen = row.since, row.last_seen
            if row.online:
                state.since = state.last_seen = max(filter(None, (row.last_seen, alive_until)), default=None)
            state.version = row.version
            state.calls_day, state.calls, state.last_call_at = row.calls_day, row.calls, row.last_call_at

    def take_dirty(self) -> list[FleetRow]:
        """The rows to write now; the kiosks count as clean from here on."""
        rows = [self.row(kiosk_id) for kiosk_id in sorted(self.dirty) if kiosk_id in self.kiosks]
        self.dirty.clear()
        return rows

    def row(self, kiosk_id: int) -> FleetRow:
        s = self.kiosks[kiosk_id]
        return FleetRow(kiosk_id=kiosk_id, online=s.online, since=s.since, last_seen=s.last_seen, version=s.version,
                        calls_day=s.calls_day, calls=s.calls, last_call_at=s.last_call_at)
