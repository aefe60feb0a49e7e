"""Settings and actions from central, applied by the controller's hooks (appliance/fleet/) on fake
hardware: what the kiosk shows and plays, what it stores for an offline start, what it refuses, the
screen outside office hours, and actions refused while a citizen is served unless forced."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from types import SimpleNamespace

import pytest

from appliance.config import LANGUAGES
from appliance.controller.machine import Controller, Timeouts
from appliance.controller.view import Screen
from appliance.fleet import actions
from appliance.fleet.actions import Actions
from appliance.fleet.devices import DeviceBook
from appliance.fleet.settings import SETTINGS_FILE, RemoteSettings, load
from appliance.hardware.fake.backend import FakeMicrophone, MemorySpeaker
from appliance.hardware.fake.display import FakeDisplay
from appliance.hardware.pi.display import open_display
from appliance.service.power import FakePower
from protocol import fleet as f
from protocol import messages as m

NOW = dt.datetime(2026, 12, 7, 20, 0, tzinfo=dt.UTC)  # a Monday evening: everything closed
SETTINGS = dict(version=3, location="Bücherei Nord", departments=["standesamt", "buergerbuero"],
                default_language="tr", languages=["de", "tr", "en"], volume_pct=40, mic_gain_db=-6,
                brightness_pct=60, screen_off_outside_hours=False, relay_only=False,
                call_upload_kbit_s=1200)


class Rig:
    def __init__(self, data_dir, *, now=NOW):
        self.sent: list[m.Message] = []
        self.now = now
        self.hardware = SimpleNamespace(speaker=MemorySpeaker(), microphone=FakeMicrophone(), display=FakeDisplay())
        self.devices = DeviceBook()
        self.remote = RemoteSettings(data_dir=data_dir, hardware=self.hardware, languages=LANGUAGES,
                                     send=self._send, devices=self.devices, clock=lambda: self.now)

        def publish(view):
            self.remote.view_changed(view)

        self.c = Controller(send=self._send, new_call=lambda *a: None, led=lambda mode: None, publish=publish,
                            timeouts=Timeouts(choosing_s=5, consent_s=5, ended_s=5, notice_s=5, request_s=5,
                                              media_s=60))
        self.c.remote, self.remote.refresh = self.remote, self.c.refresh
        self.restarts = 0
        self.power = FakePower()
        self.c.selftest = SimpleNamespace(start=lambda by: {"started_by": by, "items": []})
        self.remote.actions = Actions(controller=self.c, send=self._send, power=self.power, restart=self._restart)
        self.task = asyncio.get_running_loop().create_task(self.c.run())

    def _restart(self):
        self.restarts += 1

    async def _send(self, msg):
        self.sent.append(msg)

    async def do(self, kind, value=None):
        self.c.post(kind, value)
        await self.c.settle()
        return self.c.view

    async def online(self, opened=("buergerbuero", "standesamt", "ordnungsamt")):
        welcome = m.Welcome(type="welcome", kiosk_location="Foyer", ice_servers=[], departments=[
            m.DepartmentInfo(slug=s, name=s.title(), open=s in opened,
                             next_opening=None if s in opened else "2026-12-08T08:00:00+01:00")
            for s in ("buergerbuero", "standesamt", "ordnungsamt")])
        return await self.do("connected", welcome)

    async def settings(self, **changes):
        return await self.do("central", f.SettingsMessage(type="kiosk.settings",
                                                          settings=f.KioskSettings(**{**SETTINGS, **changes})))

    async def action(self, action, force=False):
        await self.do("central", f.KioskAction(type="kiosk.action", action_id="a" * 12, action=action, force=force))
        return [(r.outcome) for r in self.sent if isinstance(r, f.ActionResult)][-1]

    def of(self, cls):
        return [msg for msg in self.sent if isinstance(msg, cls)]


@pytest.fixture
async def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.task.cancel()
    r.remote.close()


async def test_settings_apply_live_are_stored_and_acknowledged(rig, tmp_path):
    await rig.online()
    view = await rig.settings()
    assert view.location == "Bücherei Nord"
    assert [d.slug for d in view.departments] == ["standesamt", "buergerbuero"]  # offered ones, central's order
    assert (view.languages, view.language) == (("de", "tr", "en"), "tr")  # idle: starts in the new language
    assert (rig.hardware.speaker.volume_pct, rig.hardware.microphone.gain_db) == (40, -6)
    assert rig.hardware.display.brightness_pct == 60
    assert [a.version for a in rig.of(f.SettingsApplied)] == [3]
    stored = json.loads((tmp_path / SETTINGS_FILE).read_text())
    assert stored == {"settings": SETTINGS, "names": {"standesamt": "Standesamt", "buergerbuero": "Buergerbuero"}}
    assert not [p for p in os.listdir(tmp_path) if p != SETTINGS_FILE]  # no temporary file left behind

    # A citizen's visit ends: the next one starts in the kiosk's language, not German.
    await rig.do("language", "en")
    await rig.do("choose", "standesamt")
    view = await rig.do("cancel")
    assert (view.screen, view.language) == (Screen.IDLE, "tr")

    # A reconnect's welcome lists every department again; the kiosk still shows only its own.
    view = await rig.online()
    assert [d.slug for d in view.departments] == ["standesamt", "buergerbuero"]


async def test_an_offline_start_shows_the_last_location_and_departments(tmp_path):
    first = Rig(tmp_path)
    await first.online()
    await first.settings()
    first.task.cancel()

    again = Rig(tmp_path)  # a new start, central unreachable: no welcome
    try:
        again.remote.start()
        view = again.c.view
        assert view.location == "Bücherei Nord" and not view.online
        assert [(d.slug, d.name) for d in view.departments] == [("standesamt", "Standesamt"),
                                                                 ("buergerbuero", "Buergerbuero")]
        assert again.hardware.speaker.volume_pct == 40 and again.remote.default_language == "tr"
    finally:
        again.task.cancel()


async def test_a_damaged_settings_file_is_ignored(tmp_path):
    (tmp_path / SETTINGS_FILE).write_text('{"settings": {"version": 0}}')
    assert load(tmp_path / SETTINGS_FILE) is None
    (tmp_path / SETTINGS_FILE).write_text("not json")
    rig = Rig(tmp_path)
    try:
        rig.remote.start()
        assert rig.remote.current is None and rig.c.view.location == ""
    finally:
        rig.task.cancel()


@pytest.mark.parametrize("changes, broken, device", [
    (dict(languages=["de", "fr"]), None, None),           # a language this unit does not ship
    (dict(volume_pct=55), "speaker", "speaker"),          # the speaker refuses its volume
    (dict(brightness_pct=30), "display", None),           # the backlight refuses
])
async def test_settings_the_unit_cannot_use_are_refused_and_the_old_ones_kept(rig, tmp_path, changes, broken,
                                                                              device):
    await rig.online()
    await rig.settings()
    if broken:
        getattr(rig.hardware, broken).fail()
    view = await rig.settings(version=4, location="Elsewhere", **changes)
    assert view.location == "Bücherei Nord" and rig.remote.current.version == 3
    assert (rig.hardware.speaker.volume_pct, rig.hardware.display.brightness_pct) == (40, 60)
    assert [a.version for a in rig.of(f.SettingsApplied)] == [3]
    assert json.loads((tmp_path / SETTINGS_FILE).read_text())["settings"]["version"] == 3
    assert [(x.code, x.device) for x in rig.devices.recent_faults()] == [("settings_rejected", None)]
    assert [(x.device, x.fault) for x in rig.of(f.DeviceFault)] == ([(device, "settings_rejected")] if device else [])


async def test_the_screen_goes_dark_while_every_offered_department_is_closed_and_a_press_wakes_it(rig):
    display = rig.hardware.display
    await rig.online(opened=("ordnungsamt",))  # only a department this kiosk does not offer is open
    await rig.settings(screen_off_outside_hours=True)
    assert display.on is False
    view = await rig.do("press")  # wakes the screen, and does nothing else
    assert display.on is True and view.screen is Screen.IDLE
    view = await rig.do("press")  # now the citizen sees the kiosk: the press counts
    assert view.notice == "closed"

    rig.now = NOW + dt.timedelta(seconds=121)  # awake for two minutes, then dark again
    rig.remote._screen()
    assert display.on is False
    rig.now = dt.datetime(2026, 12, 8, 7, 0, 1, tzinfo=dt.UTC)  # 08:00:01 in Berlin: the offices open
    rig.remote._screen()
    assert display.on is True
    assert await rig.settings(version=5, screen_off_outside_hours=False) and display.on is True


async def test_offices_opening_or_closing_reach_the_screen_on_the_open_connection(rig):
    await rig.online(opened=("standesamt",))
    await rig.settings(screen_off_outside_hours=True)
    assert rig.hardware.display.on is True
    closed = m.Welcome(type="welcome", kiosk_location="Foyer", ice_servers=[], departments=[
        m.DepartmentInfo(slug=s, name=s.title(), open=False, next_opening="2026-12-08T08:00:00+01:00")
        for s in ("buergerbuero", "standesamt", "ordnungsamt")])
    view = await rig.do("central", closed)  # central: the Standesamt closed for the day
    assert [(d.slug, d.open) for d in view.departments] == [("standesamt", False), ("buergerbuero", False)]
    assert rig.hardware.display.on is False and view.screen is Screen.IDLE


async def test_the_screen_stays_on_while_an_offered_department_is_open(rig):
    await rig.online(opened=("standesamt",))
    await rig.settings(screen_off_outside_hours=True)
    assert rig.hardware.display.on is True and rig.hardware.display.history == [("brightness", 60)]


async def test_actions_are_refused_during_a_visit_unless_forced(rig):
    await rig.online()
    await rig.settings()
    await rig.do("choose", "buergerbuero")
    await rig.do("confirm")
    await rig.do("central", m.VisitQueued(type="visit.queued", visit_id="v" * 24, resume_token="t" * 24,
                                          department="buergerbuero", position=1, expected_wait_s=60))
    for action in ("selftest", "restart", "reboot"):
        assert await rig.action(action) == "busy"
    assert rig.c.view.screen is Screen.WAITING and rig.restarts == 0 and rig.power.reboots == []

    # Forced: the visit ends as if the citizen had cancelled it, then the self-test starts.
    assert await rig.action("selftest", force=True) == "started"
    await rig.c.settle()
    assert rig.c.view.screen is Screen.SELFTEST and not rig.c.busy
    assert [type(x).__name__ for x in rig.sent if isinstance(x, m.VisitCancel)] == ["VisitCancel"]


async def test_restart_and_reboot_when_idle(rig, monkeypatch):
    monkeypatch.setattr(actions, "FAREWELL_S", 0.05)  # the time the answer gets to reach central
    await rig.online()
    assert await rig.action("restart") == "started"
    await asyncio.sleep(0.1)  # a later timer than the farewell's: it has run by then
    assert rig.restarts == 1
    assert await rig.action("reboot") == "started"
    await asyncio.sleep(0.1)
    assert len(rig.power.reboots) == 1
    rig.power.fail()
    assert await rig.action("reboot") == "started"
    await asyncio.sleep(0.1)
    assert [r.outcome for r in rig.of(f.ActionResult)][-1] == "failed"


def test_pi_display_writes_the_backlight(tmp_path):
    light = tmp_path / "10-0045"
    light.mkdir()
    for name, value in (("max_brightness", "255"), ("brightness", "255"), ("bl_power", "0")):
        (light / name).write_text(value)
    display = open_display({}, root=tmp_path)
    display.set_brightness(60)
    display.set_power(False)
    assert ((light / "brightness").read_text(), (light / "bl_power").read_text()) == ("153", "4")
    display.set_brightness(1)
    assert (light / "brightness").read_text() == "3"
    display.set_power(True)
    assert (light / "bl_power").read_text() == "0"
    (light / "brightness").chmod(0o444)
    if os.geteuid() != 0:
        from appliance.hardware.errors import DisplayError
        with pytest.raises(DisplayError, match="72-amtsklingel-access"):
            display.set_brightness(50)
    # A backlight the appliance may not write (an image without the udev rule): no effect, no refusal.
    if os.geteuid() != 0:
        assert open_display({}, root=tmp_path).backlight is None
    # No backlight (an HDMI monitor): nothing to set, and no error.
    none = open_display({}, root=tmp_path / "missing")
    none.set_brightness(50)
    none.set_power(False)
