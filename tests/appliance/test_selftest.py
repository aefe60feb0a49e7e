"""The self-test with the fake hardware: every item passes, and each fails in turn when its fake is told to.

The controller is the real one; central is played by the test (what the self-test sends is
collected). The tone really goes through the fakes: fake speaker -> the fake microphone's room.
"""
from __future__ import annotations

import asyncio

import pytest

from appliance.controller.machine import Controller
from appliance.controller.view import Screen
from appliance.hardware.select import open_hardware
from appliance.kiosk.self_view import SelfViewFeed
from appliance.selftest.probes import fake_probes
from appliance.selftest.runner import Selftest, SelftestTimes
from protocol import fleet as f
from protocol import messages as m

QUICK = SelftestTimes(camera_s=3.0, microphone_s=2.0, quiet_s=0.4, tone_s=0.6, echo_s=0.2, button_s=1.0,
                      results_s=30.0)
HOLD = {"long_press_s": 0.3, "selftest_hold_s": 0.8}


class Book:
    """Records what the self-test writes into the unit's DeviceBook (same calls as appliance/fleet/devices.py)."""

    def __init__(self):
        self.states = {}

    def set(self, device, state, source, fault=None, name=None):
        self.states[device] = (state, source, fault)

    def ok(self, device, source, name=None):
        self.set(device, "ok", source)


class Unit:
    def __init__(self):
        self.hw = open_hardware({"backend": "fake", "button": HOLD})
        self.sent: list[m.Message] = []
        self.online, self.token = True, "1." + "x" * 40
        self.probes = fake_probes(lambda: bool(self.token))
        self.book = Book()
        self.self_view = SelfViewFeed()
        self.c = Controller(send=self._send, new_call=None, led=self.hw.button.led, publish=lambda view: None)
        self.selftest = Selftest(hardware=self.hw, self_view=self.self_view, send=self._send, post=self.c.post,
                                 is_online=lambda: self.online, probes=self.probes, devices=self.book, times=QUICK)
        self.c.selftest = self.selftest
        self.hw.button.on_short_press = lambda: self.c.post("press")
        self.hw.button.on_long_press = lambda: self.c.post("long_press")
        self.hw.button.on_selftest_hold = lambda: self.c.post("selftest", "button")
        self.task = asyncio.get_running_loop().create_task(self.c.run())

    async def _send(self, msg):
        self.sent.append(msg)

    async def until(self, predicate, seconds=10.0):
        async with asyncio.timeout(seconds):
            while True:
                if predicate(self.c.view):
                    return self.c.view
                await asyncio.sleep(0.02)

    async def run_through(self, press=True) -> dict[str, tuple[str, str | None]]:
        """Run a whole self-test started by central; returns item -> (result, fault) as reported."""
        self.c.post("selftest", "central")
        await self.until(lambda v: v.screen is Screen.SELFTEST)
        if press:
            await self.until(lambda v: v.selftest and v.selftest["asking"] == "press")
            await self.hw.button.press()
        view = await self.until(lambda v: v.selftest and v.selftest["done"])
        sent = [msg for msg in self.sent if isinstance(msg, f.SelftestReport)]
        report = self.selftest.last_report
        assert sent == ([report] if self.online else [])  # offline, central learns it from the next test
        assert report.started_by == "central"
        shown = {i["item"]: (i["state"], i["fault"]) for i in view.selftest["items"]}
        reported = {i.item: (i.result, i.fault) for i in report.items}
        assert shown == reported  # the screen says what central is told
        return reported

    async def close(self):
        self.selftest.stop()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        self.hw.close()


@pytest.fixture
async def unit():
    u = Unit()
    yield u
    await u.close()


ALL_PASS = {item: ("pass", None) for item in f.SELFTEST_ITEMS}


async def test_everything_passes_and_leaving_returns_to_idle(unit):
    assert await unit.run_through() == ALL_PASS
    # The picture and the meter were live: the camera's frames reached the page's feed, the meter moved.
    assert unit.self_view.stats["frames_in"] > 0
    assert unit.book.states == {d: ("ok", "selftest", None) for d in ("camera", "microphone", "speaker", "button")}
    assert unit.hw.button.mode == "in_call"  # the LED is lit throughout (part of looking at the button)
    await unit.hw.button.press()  # any press leaves the results
    view = await unit.until(lambda v: v.screen is Screen.IDLE)
    assert view.selftest is None
    assert unit.hw.camera._track is None or unit.hw.camera._track.readyState == "ended"  # camera off again
    assert unit.self_view._track is None


async def test_the_level_meter_moves(unit):
    levels = []
    unit.c._publish = lambda view: levels.append(view.selftest["level"]) if view.selftest else None
    await unit.run_through()
    assert max(levels) > 0.3  # the fake microphone's tone is at -10 dBFS


FAILURES = {
    "camera": (lambda u: u.hw.camera.fail(), {"camera": ("fail", "camera_failed")}),
    "microphone": (lambda u: u.hw.microphone.fail(),
                   {"microphone": ("fail", "microphone_failed"), "sound_loop": ("skipped", None)}),
    "speaker": (lambda u: u.hw.speaker.fail(), {"sound_loop": ("fail", "speaker_failed")}),
    "silent_room": (lambda u: setattr(u.hw.microphone.room, "gain", 0.0), {"sound_loop": ("fail", "tone_not_heard")}),
    "button": (lambda u: u.hw.button.fail(), {"button": ("fail", "button_not_pressed")}),
    "network": (lambda u: u.probes.network.fail(), {"network": ("fail", "network_down")}),
    "central": (lambda u: setattr(u, "online", False), {"central": ("fail", "central_unreachable")}),
    "clock": (lambda u: u.probes.clock.fail(), {"clock": ("fail", "clock_unsynchronised")}),
    "enrolment": (lambda u: setattr(u, "token", ""), {"enrolment": ("fail", "not_enrolled")}),
}


@pytest.mark.parametrize("broken", list(FAILURES))
async def test_each_fake_told_to_fail_fails_its_item(unit, broken):
    breaks, expected = FAILURES[broken]
    breaks(unit)
    reported = await unit.run_through()
    assert reported == {**ALL_PASS, **expected}


async def test_a_camera_that_stops_after_a_few_frames_fails(unit):
    unit.hw.camera.fail(after_frames=0)
    assert (await unit.run_through())["camera"] == ("fail", "camera_failed")


async def test_failed_devices_are_written_to_the_device_book(unit):
    unit.hw.camera.fail()
    unit.hw.speaker.fail()
    await unit.run_through()
    assert unit.book.states["camera"] == ("failed", "selftest", "camera_failed")
    assert unit.book.states["speaker"] == ("failed", "selftest", "speaker_failed")
    assert unit.book.states["microphone"] == ("ok", "selftest", None)


def welcome(*open_departments):
    return m.Welcome(type="welcome", kiosk_location="Foyer", ice_servers=[], departments=[
        m.DepartmentInfo(slug=s, name=s.title(), open=True) for s in open_departments])


async def test_holding_the_button_five_seconds_on_the_idle_screen_starts_it(unit):
    unit.c.post("connected", welcome("buergerbuero", "standesamt"))
    await unit.until(lambda v: v.online)
    unit.hw.button.push()
    # The hold's long press (its first second) opens the choice of offices, as it always did ...
    await unit.until(lambda v: v.screen is Screen.CHOOSING)
    # ... and the same hold, kept up, starts the self-test.
    view = await unit.until(lambda v: v.screen is Screen.SELFTEST)
    unit.hw.button.release()
    assert view.selftest["started_by"] == "button"
    assert unit.selftest.running


async def test_a_short_hold_does_not_start_it(unit):
    await unit.hw.button.long_press(0.5)
    await asyncio.sleep(0.6)
    await unit.c.settle()
    assert unit.c.view.screen is Screen.IDLE and not unit.selftest.running


async def test_never_during_a_visit(unit):
    unit.c.post("connected", welcome("buergerbuero"))
    await unit.until(lambda v: v.online)
    unit.c.post("press")
    await unit.until(lambda v: v.screen is Screen.CONSENT)
    unit.c.post("confirm")
    await unit.until(lambda v: v.screen is Screen.WAITING)
    for started_by in ("central", "button"):
        unit.c.post("selftest", started_by)
        await unit.c.settle()
        assert unit.c.view.screen is Screen.WAITING and not unit.selftest.running


async def test_central_may_start_it_before_a_visit_began(unit):
    # Choosing an office is not a visit yet (central's kiosk.action answers busy only for one; appliance/fleet).
    unit.c.post("connected", welcome("buergerbuero", "standesamt"))
    await unit.until(lambda v: v.online)
    unit.c.post("press")
    await unit.until(lambda v: v.screen is Screen.CHOOSING)
    unit.c.post("selftest", "central")
    view = await unit.until(lambda v: v.screen is Screen.SELFTEST)
    assert view.selftest["started_by"] == "central"


async def test_a_long_press_leaves_half_way_without_a_report(unit):
    unit.c.post("selftest", "central")
    await unit.until(lambda v: v.screen is Screen.SELFTEST)
    unit.c.post("long_press")
    await unit.until(lambda v: v.screen is Screen.IDLE)
    assert not unit.selftest.running and unit.selftest.last_report is None
    assert unit.self_view._track is None


async def test_the_echo_canceller_is_off_while_the_tone_plays(unit):
    # On a real unit the canceller would take the tone out of what the microphone hears.
    class Canceller:
        bypassed = False

        def close(self):
            pass

    unit.hw.echo = Canceller()
    during = []
    play = unit.hw.speaker.play

    async def recording_play(frame):
        during.append(unit.hw.echo.bypassed)
        await play(frame)
    unit.hw.speaker.play = recording_play
    await unit.run_through()
    assert during and all(during)
    await unit.hw.button.press()
    await unit.until(lambda v: v.screen is Screen.IDLE)
    assert unit.hw.echo.bypassed is False


async def test_a_unit_waiting_to_be_enrolled_can_be_tested_and_goes_back_to_its_code(unit):
    from appliance.controller.view import EnrolScreen
    unit.token, unit.online = None, False
    unit.c.post("enrol", EnrolScreen(serial="fake-0001", code="K7MP-4QX9"))
    await unit.until(lambda v: v.screen is Screen.ENROL)
    await unit.hw.button.hold_for_selftest()
    await unit.until(lambda v: v.screen is Screen.SELFTEST)
    # A fresh code arrives meanwhile: the self-test goes on, the new code is shown afterwards.
    unit.c.post("enrol", EnrolScreen(serial="fake-0001", code="Z2Z2-Z2Z2"))
    await unit.until(lambda v: v.selftest and v.selftest["asking"] == "press")
    await unit.hw.button.press()
    view = await unit.until(lambda v: v.selftest and v.selftest["done"])
    results = {i["item"]: (i["state"], i["fault"]) for i in view.selftest["items"]}
    assert results["enrolment"] == ("fail", "not_enrolled") and results["camera"] == ("pass", None)
    await unit.hw.button.press()
    view = await unit.until(lambda v: v.screen is Screen.ENROL)
    assert view.enrol.code == "Z2Z2-Z2Z2"


async def test_leaving_the_screen_any_other_way_stops_it(unit):
    unit.c.post("selftest", "central")
    await unit.until(lambda v: v.selftest and v.selftest["items"][0]["state"] == "pass")  # the camera is on
    unit.c.post("fault", "replaced")  # e.g. central says another unit uses this one's token
    await unit.until(lambda v: v.screen is Screen.FAULT)
    await unit.c.settle()
    assert not unit.selftest.running and unit.self_view._track is None
    assert unit.hw.camera._track is None or unit.hw.camera._track.readyState == "ended"


async def test_a_result_central_missed_is_sent_once_the_link_is_back(unit):
    unit.online = False
    reported = await unit.run_through()
    assert reported["central"] == ("fail", "central_unreachable") and unit.sent == []
    unit.online = True
    unit.selftest.connected()
    await asyncio.sleep(0.05)
    assert unit.sent == [unit.selftest.last_report]
    unit.selftest.connected()  # a later reconnect does not send it again
    await asyncio.sleep(0.05)
    assert len(unit.sent) == 1
