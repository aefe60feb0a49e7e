"""A USB microphone, speaker or speakerphone unplugged and plugged in again, between calls and in one:
what the device watch (appliance/fleet/watch.py) records for the health report, and what the kiosk
controller shows. The whole path with central and browsers is in tests/e2e/test_device_unplug.py."""
from __future__ import annotations

import pytest

from appliance.controller.view import Screen
from appliance.fleet.devices import DeviceBook
from appliance.fleet.watch import DeviceWatch
from appliance.hardware.errors import AudioDeviceError
from appliance.hardware.fake.backend import FakeCamera, FakeMicrophone, MemorySpeaker
from tests.appliance.controller_rig import VISIT, in_call, rig, to_waiting  # noqa: F401 - rig is a fixture


class Hardware:
    def __init__(self):
        self.camera, self.microphone, self.speaker = FakeCamera(), FakeMicrophone(), MemorySpeaker()
        self.button = object()  # not watched: it has no present()


class ReopeningSpeaker(MemorySpeaker):
    """As the ALSA speaker: once back it must be opened again, which may fail at first."""

    def __init__(self):
        super().__init__()
        self.reopen_fails, self.reopened = 0, 0

    def reopen(self):
        if self.reopen_fails:
            self.reopen_fails -= 1
            raise AudioDeviceError("the card is there but does not open yet")
        self.reopened += 1


@pytest.fixture
def watch():
    return DeviceWatch(Hardware(), DeviceBook(), post=None)


def test_an_unplugged_speakerphone_is_missing_in_the_health_report_until_plugged_in(watch):
    hw, book = watch.hardware, watch.book
    assert watch.check() == []
    hw.microphone.unplug()
    hw.speaker.unplug()  # one USB device for both
    assert watch.check() == [("microphone", False), ("speaker", False)]
    devices = book.snapshot()
    assert (devices["microphone"].state, devices["microphone"].fault) == ("missing", "microphone_missing")
    assert (devices["speaker"].state, devices["speaker"].fault) == ("missing", "speaker_missing")
    assert devices["camera"].state == "unknown"
    assert watch.check() == []  # counted once, not at every look
    assert [(f.code, f.count) for f in book.recent_faults()] == [("speaker_missing", 1), ("microphone_missing", 1)]
    hw.microphone.plug()
    hw.speaker.plug()
    assert watch.check() == [("microphone", True), ("speaker", True)]
    devices = book.snapshot()
    assert devices["microphone"].state == devices["speaker"].state == "ok"
    assert devices["microphone"].name == "synthetic tone" and devices["microphone"].fault is None


def test_a_device_back_but_not_opening_stays_missing_until_it_opens():
    hw = Hardware()
    hw.speaker = speaker = ReopeningSpeaker()
    watch = DeviceWatch(hw, DeviceBook(), post=None)
    speaker.unplug()
    watch.check()
    speaker.plug()
    speaker.reopen_fails = 1
    assert watch.check() == []
    assert watch.book.snapshot()["speaker"].state == "missing"
    assert watch.check() == [("speaker", True)] and speaker.reopened == 1


def test_a_device_that_only_fails_is_not_missing(watch):
    watch.hardware.microphone.fail()  # broken, but still plugged in: the call's own watch reports that
    assert watch.check() == []
    assert watch.book.snapshot()["microphone"].state == "unknown"


# -- the kiosk's screens (appliance/controller/core.py) ----------------------------------------------

async def test_unplugged_while_idle_shows_the_fault_screen_until_plugged_in(rig):  # noqa: F811
    await rig.online()
    view = await rig.do("device", ("microphone", False))
    assert view.screen is Screen.FAULT and view.fault == "microphone" and rig.leds[-1] == "fault"
    assert (await rig.do("press")).screen is Screen.FAULT  # nobody can start a visit
    view = await rig.do("device", ("speaker", False))
    assert view.fault == "microphone"  # the first one gone is named
    view = await rig.do("device", ("microphone", True))
    assert view.screen is Screen.FAULT and view.fault == "speaker"
    view = await rig.do("device", ("speaker", True))
    assert view.screen is Screen.IDLE and rig.leds[-1] == "idle"
    assert (await rig.do("press")).screen is Screen.CHOOSING


async def test_unplugged_while_choosing_ends_the_choice(rig):  # noqa: F811
    await rig.online()
    await rig.do("press")
    view = await rig.do("device", ("camera", False))
    assert view.screen is Screen.FAULT and view.fault == "camera"


async def test_a_queued_citizen_keeps_their_place_and_the_fault_screen_follows_the_visit(rig):  # noqa: F811
    await to_waiting(rig)
    view = await rig.do("device", ("microphone", False))
    assert view.screen is Screen.WAITING  # the call tells both sides why it ends, if it comes to one
    await rig.central(type="call.start", visit_id=VISIT, ice_servers=[], resume_token="t" * 24)
    rig.calls[-1].report("microphone_failed")  # the microphone's track did not start
    await rig.c.settle()
    assert rig.c.view.screen is Screen.ENDED and rig.c.view.ended_reason == "device_failed"
    view = await rig.do("press")  # leaves the end screen (as its timer does)
    assert view.screen is Screen.FAULT and view.fault == "microphone"
    view = await rig.do("device", ("microphone", True))
    assert view.screen is Screen.IDLE


async def test_unplugged_in_a_call_leaves_the_call_to_the_call(rig):  # noqa: F811
    await in_call(rig)
    view = await rig.do("device", ("speaker", False))
    assert view.screen is Screen.IN_CALL and not rig.calls[-1].closed
    view = await rig.do("device", ("speaker", True))
    assert view.screen is Screen.IN_CALL


async def test_a_fault_of_the_unit_is_not_cleared_by_a_device_coming_back(rig):  # noqa: F811
    await rig.online()
    await rig.do("fault", "replaced")
    await rig.do("device", ("microphone", False))
    view = await rig.do("device", ("microphone", True))
    assert view.screen is Screen.FAULT and view.fault == "replaced"


async def test_a_speaker_failing_in_a_call_tells_central_and_the_citizen_and_the_call_goes_on(rig):  # noqa: F811
    from protocol import fleet as f
    await in_call(rig)
    rig.calls[-1].report("speaker_failed")
    await rig.c.settle()
    assert rig.c.view.screen is Screen.IN_CALL and rig.c.view.notice == "speaker_failed"
    assert rig.c.view.camera_on and rig.c.view.microphone_on
    assert rig.sent == [f.DeviceFault(type="device.fault", device="speaker", fault="speaker_failed", visit_id=VISIT)]
    assert not rig.calls[-1].closed
    rig.calls[-1].report("speaker_back")
    await rig.c.settle()
    assert rig.c.view.screen is Screen.IN_CALL and rig.c.view.notice is None
