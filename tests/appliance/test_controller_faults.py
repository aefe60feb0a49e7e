"""Faults of the unit in the kiosk's state machine: a refused token, another unit with this unit's token, and a
device of the call failing (appliance/call/devices.py reports it through the call's state callback)."""
from __future__ import annotations

from appliance.controller.view import Screen
from protocol import messages as m
from tests.appliance import controller_rig
from tests.appliance.controller_rig import TOKEN, VISIT, in_call, to_waiting

rig = controller_rig.rig  # the rig's fixture, here too


async def test_refused_token_is_a_fault_until_reenrolled(rig):
    view = await rig.do("fault", "token_refused")
    assert view.screen is Screen.FAULT and rig.leds[-1] == "fault"
    assert (await rig.do("press")).screen is Screen.FAULT
    assert (await rig.online()).screen is Screen.IDLE


async def test_replaced_is_a_fault_that_drops_the_visit(rig):
    await to_waiting(rig)
    await rig.central(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=TOKEN)
    view = await rig.do("fault", "replaced")
    assert view.screen is Screen.FAULT and view.fault == "replaced" and rig.leds[-1] == "fault"
    assert rig.calls[0].closed and not rig.c.has_visit_data


async def test_a_failed_camera_keeps_the_call_audio_only_and_tells_central(rig):
    from protocol import fleet as f
    await in_call(rig)
    rig.calls[-1].report("camera_failed")
    await rig.c.settle()
    view = rig.c.view
    assert view.screen is Screen.IN_CALL and view.notice == "camera_failed" and not view.camera_on
    assert rig.sent == [f.DeviceFault(type="device.fault", device="camera", fault="camera_failed", visit_id=VISIT)]
    assert not rig.calls[-1].closed


async def test_video_the_clerks_browser_refused_leaves_a_call_with_audio_and_a_word_to_the_citizen(rig):
    await in_call(rig)
    rig.calls[-1].report("video_rejected")
    await rig.c.settle()
    view = rig.c.view
    assert view.screen is Screen.IN_CALL and view.notice == "video_rejected" and not view.camera_on
    assert rig.sent == []  # no device fault: the clerk's console sees its own answer
    assert not rig.calls[-1].closed


async def test_a_failed_microphone_ends_the_call_with_the_reason(rig):
    from protocol import fleet as f
    await in_call(rig)
    rig.calls[-1].report("microphone_failed")
    await rig.c.settle()
    assert rig.c.view.screen is Screen.ENDED and rig.c.view.ended_reason == "device_failed"
    assert rig.sent == [
        f.DeviceFault(type="device.fault", device="microphone", fault="microphone_failed", visit_id=VISIT),
        m.VisitHangup(type="visit.hangup", visit_id=VISIT, reason="device_failed")]
    assert rig.calls[-1].closed


async def test_a_device_report_of_a_closed_call_changes_nothing(rig):
    await in_call(rig)
    old = rig.calls[-1]
    await rig.central(type="visit.ended", visit_id=VISIT, reason="hangup_staff")
    old.report("microphone_failed")
    await rig.c.settle()
    assert rig.sent == [] and rig.c.view.screen is Screen.ENDED and rig.c.view.ended_reason == "hangup_staff"


async def test_the_reason_of_a_device_hang_up_is_told_again_after_a_reconnect(rig):
    await in_call(rig)
    await rig.do("disconnected")  # the hang-up is lost with the connection
    rig.calls[-1].report("microphone_failed")
    await rig.c.settle()
    rig.sent.clear()
    await rig.online()
    await rig.central(type="visit.resumed", visit_id=VISIT, state="in_call", department="buergerbuero",
                      resume_token=TOKEN)
    assert rig.sent[-1] == m.VisitHangup(type="visit.hangup", visit_id=VISIT, reason="device_failed")
