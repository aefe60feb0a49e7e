"""The fleet as the admin page and /metrics see it: one line per kiosk, from the registry in memory.

Built from the kiosk list (one database query, made by the caller) and the registry; nothing
here touches the database, so the page costs the same for every kiosk however many there are.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from central.fleet.lights import BAD, NONE, OK, WARN, Light, lights
from central.fleet.registry import FleetRegistry, KioskState
from central.storage.database import Department, Kiosk
from central.storage.fleet import FleetKiosk
from central.updates.book import Shown, UpdateBook

FILTERS = ("all", "offline", "problems")


@dataclass(slots=True)
class KioskLine:
    kiosk: Kiosk
    state: KioskState
    lights: list[Light]
    office_open: bool       # one of its departments is open now
    calls_today: int
    departments: tuple[str, ...] | None  # offered; None: every department
    settings_version: int   # of its settings now; the kiosk acknowledged state.settings_applied
    worst: str = NONE       # the worst light's level
    flagged: bool = False   # offline while a citizen could want to call: shown at the top of the page
    # Offline, or a red or amber light (an offline kiosk's lights are its last known ones).
    needs_attention: bool = False
    update: Shown | None = None  # its update, as the fleet page's "Update" column says it (central/updates/)

    def __post_init__(self) -> None:
        self.worst = _worst(self.lights)
        self.flagged = not self.state.online and self.office_open
        self.needs_attention = not self.state.online or self.worst in (BAD, WARN)


def _worst(found: list[Light]) -> str:
    levels = {light.level for light in found}
    return next((level for level in (BAD, WARN, OK) if level in levels), NONE)


def open_departments(departments: Iterable[Department], now: dt.datetime) -> set[str]:
    """Slugs of the departments open now (each department's hours judged once, not once per kiosk)."""
    return {d.slug for d in departments if d.hours.is_open(now)}


def lines(kiosks: Iterable[FleetKiosk], registry: FleetRegistry, open_now: set[str],
          updates: UpdateBook | None = None) -> list[KioskLine]:
    """Every kiosk that is not revoked."""
    today = registry.today()
    return [line(k, registry, open_now, today, updates) for k in kiosks if not k.kiosk.revoked]


def line(found: FleetKiosk, registry: FleetRegistry, open_now: set[str], today: dt.date | None = None,
         updates: UpdateBook | None = None) -> KioskLine:
    kiosk = found.kiosk
    state = registry.kiosks.get(kiosk.id) or KioskState(kiosk.id)
    offered = open_now if found.departments is None else open_now.intersection(found.departments)
    if state.lights_of is not state.health:  # judged once per report, not once per page view
        state.lights, state.lights_of = lights(state.health), state.health
    return KioskLine(kiosk, state, state.lights, bool(offered), state.calls_on(today or registry.today()),
                     found.departments, found.settings_version,
                     update=updates.shown(kiosk.id, state.version) if updates is not None else None)


def ordered(found: list[KioskLine]) -> list[KioskLine]:
    """Flagged first, then offline, then by how bad the lights are, then by location."""
    rank = {BAD: 0, WARN: 1, OK: 2, NONE: 3}
    return sorted(found, key=lambda line: (not line.flagged, line.state.online, rank[line.worst],
                                           line.kiosk.location.casefold(), line.kiosk.id))


def select(found: list[KioskLine], show: str) -> list[KioskLine]:
    if show == "offline":
        return [line for line in found if not line.state.online]
    if show == "problems":
        return [line for line in found if line.needs_attention]
    return found
