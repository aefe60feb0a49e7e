"""Settings from central, applied live: location, departments and their order, languages, speaker
volume, microphone gain, screen brightness and the screen going dark outside office hours.

Central sends ``kiosk.settings`` after every welcome and on every change. They are applied at once
(no restart), stored in ``data_dir/settings.json`` for the next start without network, and
acknowledged with ``kiosk.settings.applied``. Settings this unit cannot use (a language it does not
ship, a speaker that refuses its volume) are refused as a whole: the old ones stay, and the fault
``settings_rejected`` goes into the health report (and, for a device, as ``device.fault``).

The controller calls in through a few hooks (appliance/controller/core.py: ``remote``), always
on its own event loop, so nothing here runs at the same time as a controller event.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pydantic

from appliance.controller.view import DepartmentChoice, Screen, View, department_choices, openings_while_closed
from appliance.hardware.errors import DeviceUsageError, HardwareError
from appliance.service.files import write_atomic
from protocol import fleet as f
from protocol import messages as m
from protocol.errors import AmtsklingelError

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"
DEFAULT_LANGUAGE = "de"
# Inputs that wake a dark screen (and do nothing else: the citizen could not see what they touched).
WAKING = ("press", "long_press", "choose", "confirm", "language")
AWAKE_S = 120.0  # how long a woken screen stays on while every department is still closed


class SettingsRejected(AmtsklingelError, ValueError):
    """Settings from central this unit cannot apply; the old ones stay."""

    def __init__(self, message: str, device: f.Device | None = None) -> None:
        super().__init__(message)
        self.device = device


def load(path: Path) -> tuple[f.KioskSettings, dict[str, str]] | None:
    """The stored settings and department names, or None (none yet, or unreadable: then logged)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        settings = f.KioskSettings.model_validate(raw["settings"])
        names = {str(k): str(v)[:120] for k, v in dict(raw.get("names", {})).items()}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, pydantic.ValidationError) as exc:
        log.warning("ignoring %s (%s); central sends the settings again on connecting", path, type(exc).__name__)
        return None
    return settings, names


def save(path: Path, settings: f.KioskSettings, names: dict[str, str]) -> None:
    """Atomically: a power cut leaves the old file or the new one, never half of one."""
    write_atomic(path, json.dumps({"settings": settings.model_dump(), "names": names}, ensure_ascii=False, indent=1))


class RemoteSettings:
    """The kiosk's settings from central, and (``actions``) the actions central asks for."""

    def __init__(self, *, data_dir: Path, hardware, languages: tuple[str, ...],  # noqa: ANN001 - Hardware
                 send: Callable[[m.Message], Awaitable[None]], devices=None,  # noqa: ANN001 - DeviceBook
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.path = Path(data_dir) / SETTINGS_FILE
        self.hardware, self.shipped, self._send, self.devices = hardware, languages, send, devices
        self.clock = clock
        self.current: f.KioskSettings | None = None
        self.names: dict[str, str] = {}            # slug -> name, for an offline start
        self._welcome: tuple[DepartmentChoice, ...] | None = None  # every department, as the last welcome said
        self.refresh: Callable[..., None] = lambda **changes: None  # the controller's, set by it
        self.actions = None                        # appliance.fleet.actions.Actions, set by the service
        self.dark = False
        self._awake_until: dt.datetime | None = None
        self._screen_timer: asyncio.TimerHandle | None = None
        self._view = View()

    # -- start and messages ------------------------------------------------------------------------
    def start(self) -> None:
        """Apply the settings stored last time (the unit may start without network)."""
        stored = load(self.path)
        if stored is None:
            return
        settings, self.names = stored
        try:
            self._apply_hardware(settings)
        except SettingsRejected as exc:
            log.warning("stored settings not applied: %s", exc)
            return
        self.current = settings
        self.refresh(**self._view_changes(idle=True))
        log.info("settings version %d from %s in use until central is reached", settings.version, self.path)

    async def handle(self, msg: m.Message) -> bool:
        """The controller's hook for central's messages: True if it was one of ours."""
        if isinstance(msg, f.SettingsMessage):
            await self.apply(msg.settings)
        elif isinstance(msg, f.KioskAction) and self.actions is not None:
            await self.actions.run(msg)
        elif isinstance(msg, m.Welcome):  # again on an open connection: a department opened or closed
            self.refresh(departments=self.offer(department_choices(msg.departments)))
        else:
            return False
        return True

    async def apply(self, settings: f.KioskSettings) -> None:
        try:
            self._check(settings)
            self._apply_hardware(settings)
        except SettingsRejected as exc:
            log.warning("settings version %d refused, keeping version %s: %s", settings.version,
                        self.current.version if self.current else "none", exc)
            if self.devices is not None:
                self.devices.fault(None, "settings_rejected")
            if exc.device is not None:
                await self._send(f.DeviceFault(type="device.fault", device=exc.device, fault="settings_rejected"))
            return
        self.current = settings
        self.names.update({d.slug: d.name for d in self._welcome or ()})
        try:
            save(self.path, settings, {slug: self.names[slug] for slug in settings.departments if slug in self.names})
        except OSError as exc:  # applied all the same; the next start waits for central instead
            log.error("settings could not be stored in %s: %s", self.path, exc.strerror)
        self.refresh(**self._view_changes(idle=self._view.screen is Screen.IDLE))
        self._screen()
        await self._send(f.SettingsApplied(type="kiosk.settings.applied", version=settings.version))
        log.info("settings version %d applied", settings.version)

    def _check(self, settings: f.KioskSettings) -> None:
        missing = [lang for lang in settings.languages if lang not in self.shipped]
        if missing:
            raise SettingsRejected(f"languages not on this unit: {', '.join(missing)}; update the unit")
        if settings.default_language not in settings.languages:
            raise SettingsRejected(f"default language {settings.default_language} is not among those offered")

    def _apply_hardware(self, settings: f.KioskSettings) -> None:
        """Volume, gain and brightness; on a failure the old values are put back."""
        steps = [("speaker", lambda s: self.hardware.speaker.set_volume(s.volume_pct)),
                 ("microphone", lambda s: self.hardware.microphone.set_gain_db(s.mic_gain_db))]
        if self.hardware.display is not None:
            steps.append((None, lambda s: self.hardware.display.set_brightness(s.brightness_pct)))
        done = []
        for device, step in steps:
            try:
                step(settings)
            except (HardwareError, DeviceUsageError) as exc:
                for _, undo in done if self.current is not None else ():
                    try:
                        undo(self.current)
                    except (HardwareError, DeviceUsageError):
                        log.exception("could not restore the previous setting")
                raise SettingsRejected(str(exc), device) from exc
            done.append((device, step))

    # -- what the controller asks ------------------------------------------------------------------
    @property
    def default_language(self) -> str:
        return self.current.default_language if self.current else DEFAULT_LANGUAGE

    def offer(self, departments: tuple[DepartmentChoice, ...]) -> tuple[DepartmentChoice, ...]:
        """Of the welcome's departments, those offered here, in the order set in central."""
        self._welcome = departments
        return self._offered()

    def _offered(self) -> tuple[DepartmentChoice, ...]:
        if self.current is None:
            return self._welcome or ()
        if self._welcome is None:  # not connected since the start: the names stored last time
            return tuple(DepartmentChoice(slug, self.names.get(slug, slug), False) for slug in self.current.departments)
        by_slug = {d.slug: d for d in self._welcome}
        return tuple(by_slug[slug] for slug in self.current.departments if slug in by_slug)

    def _view_changes(self, *, idle: bool) -> dict[str, Any]:
        s = self.current
        changes = {"location": s.location, "departments": self._offered(), "languages": tuple(s.languages)}
        if idle:  # nobody is using the kiosk: it shows the new starting language at once
            changes["language"] = s.default_language
        return changes

    # -- the screen outside office hours -------------------------------------------------------------
    def view_changed(self, view: View) -> None:
        """Every view the controller publishes passes here: the screen follows it."""
        self._view = view
        self._screen()

    def wake(self, kind: str) -> bool:
        """A press or touch on a dark screen wakes it; True: it did nothing else."""
        if not self.dark or kind not in WAKING:
            return False
        self._awake_until = self.clock() + dt.timedelta(seconds=AWAKE_S)
        self._screen()
        return True

    def _screen(self) -> None:
        now = self.clock()
        closed_until = self._closed_until(now)
        awake = self._awake_until is not None and now < self._awake_until
        dark = closed_until is not None and not awake
        if self._screen_timer is not None:
            self._screen_timer.cancel()
            self._screen_timer = None
        # Look again when the first department opens (dark), or when a woken screen may go dark again.
        look_at = closed_until if dark else (self._awake_until if awake and closed_until is not None else None)
        if look_at is not None:
            delay = min(3600.0, max(1.0, (look_at - now).total_seconds()))
            self._screen_timer = asyncio.get_running_loop().call_later(delay, self._screen)
        if dark != self.dark:
            self._set_power(not dark)
            self.dark = dark

    def _closed_until(self, now: dt.datetime) -> dt.datetime | None:
        """When the screen may go dark: the earliest opening; None while it must stay on."""
        view, s = self._view, self.current
        if s is None or not s.screen_off_outside_hours or view.screen is not Screen.IDLE:
            return None
        openings = openings_while_closed(view, now)
        if openings is None or None in openings:
            return None  # an office is open, or when one opens again is not known: the screen stays on
        return min(openings)

    def _set_power(self, on: bool) -> None:
        if self.hardware.display is None:
            return
        try:
            self.hardware.display.set_power(on)
            log.info("screen %s", "on" if on else "off: every department offered is closed")
        except HardwareError as exc:
            log.warning("screen could not be switched %s: %s", "on" if on else "off", exc)

    def close(self) -> None:
        if self._screen_timer is not None:
            self._screen_timer.cancel()
        if self.dark:
            self._set_power(True)

