"""The kiosk's state machine, transition by transition, with central played by the test."""
from __future__ import annotations

import asyncio
import json
import logging

import pytest

from appliance.controller.machine import Controller, Timeouts
from appliance.controller.view import Screen
from protocol import messages as m
from protocol.codec import decode

VISIT = "v" * 24
TOKEN = "t" * 24


class FakeCall:
    def __init__(self, ice_servers, on_state):
        self.ice_servers = ice_servers
        self.report = on_state  # the test plays the peer connection: report("connected" | "failed")
        self.answer = None
        self.candidates = []
        self.closed = False

    async def offer(self) -> str:
        return "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n"

    async def accept_answer(self, sdp):
        self.answer = sdp

    async def add_candidate(self, candidate):
        self.candidates.append(candidate)

    async def close(self):
        self.closed = True


class Rig:
    def __init__(self, timeouts: Timeouts):
        self.sent: list[m.Message] = []
        self.calls: list[FakeCall] = []
        self.leds: list[str] = []
        self.views = []
        self.c = Controller(send=self._send, new_call=self._call, led=self.leds.append, publish=self.views.append,
                            timeouts=timeouts)
        self.task = asyncio.get_running_loop().create_task(self.c.run())

    async def _send(self, msg):
        self.sent.append(msg)

    def _call(self, servers, on_state):
        self.calls.append(FakeCall(servers, on_state))
        return self.calls[-1]

    async def do(self, kind, value=None):
        self.c.post(kind, value)
        await self.c.settle()
        return self.c.view

    async def central(self, **msg):
        return await self.do("central", _parse(msg))

    async def online(self, *departments):
        deps = departments or (("buergerbuero", True), ("standesamt", True), ("ordnungsamt", False))
        welcome = m.Welcome(type="welcome", kiosk_location="Foyer", ice_servers=[], departments=[
            m.DepartmentInfo(slug=s, name=s.title(), open=o, next_opening=None if o else "2026-11-23T08:00:00+01:00")
            for s, o in deps])
        return await self.do("connected", welcome)


def _parse(msg):
    return decode(json.dumps(msg), m.CENTRAL_TO_KIOSK)


@pytest.fixture
async def rig():
    r = Rig(Timeouts(choosing_s=0.2, consent_s=0.2, ended_s=0.2, notice_s=0.2, request_s=0.3, media_s=60))
    yield r
    r.task.cancel()


async def wait_for(rig, predicate, seconds=2.0):
    async with asyncio.timeout(seconds):
        while not predicate(rig.c.view):
            await asyncio.sleep(0.02)
            await rig.c.settle()


async def to_waiting(rig, department="buergerbuero"):
    await rig.online()
    await rig.do("press")
    await rig.do("choose", department)
    await rig.do("press")
    await rig.central(type="visit.queued", visit_id=VISIT, resume_token=TOKEN, department=department,
                      position=2, expected_wait_s=600)


async def test_idle_press_with_several_open_departments_goes_to_choosing(rig):
    view = await rig.online()
    assert view.screen is Screen.IDLE and view.online and rig.leds[-1] == "idle"
    view = await rig.do("press")
    assert view.screen is Screen.CHOOSING and view.selected == "buergerbuero"


async def test_short_press_moves_only_over_open_departments_and_long_press_selects(rig):
    await rig.online()
    await rig.do("press")
    assert (await rig.do("press")).selected == "standesamt"
    assert (await rig.do("press")).selected == "buergerbuero"  # ordnungsamt is closed: skipped
    view = await rig.do("long_press")
    assert view.screen is Screen.CONSENT and view.selected == "buergerbuero"


async def test_with_one_open_department_the_choice_is_skipped(rig):
    await rig.online(("buergerbuero", True), ("ordnungsamt", False))
    view = await rig.do("press")
    assert view.screen is Screen.CONSENT and view.selected == "buergerbuero"


async def test_nothing_open_shows_the_next_opening_then_clears(rig):
    await rig.online(("ordnungsamt", False))
    view = await rig.do("press")
    assert view.screen is Screen.IDLE and view.notice == "closed"
    assert view.next_opening.startswith("2026-11-23T08:00")
    await wait_for(rig, lambda v: v.notice is None)


async def test_touch_chooses_and_closed_departments_cannot_be_chosen(rig):
    await rig.online()
    await rig.do("press")
    assert (await rig.do("choose", "ordnungsamt")).screen is Screen.CHOOSING
    assert (await rig.do("choose", "standesamt")).screen is Screen.CONSENT


async def test_consent_confirm_requests_the_visit_in_the_chosen_language(rig):
    await rig.online()
    await rig.do("language", "tr")
    await rig.do("press")
    await rig.do("choose", "standesamt")
    view = await rig.do("confirm")
    assert view.screen is Screen.WAITING and rig.leds[-1] == "waiting"
    assert rig.sent[-1] == m.VisitRequest(type="visit.request", department="standesamt", language="tr")
    assert not rig.calls  # the camera is not on before a clerk picks up


async def test_consent_long_press_goes_back_to_idle(rig):
    await rig.online()
    await rig.do("press")
    await rig.do("long_press")
    assert (await rig.do("long_press")).screen is Screen.IDLE
    assert [s.type for s in rig.sent] == ["ping"]  # only the greeting after welcome


async def test_choosing_and_consent_time_out_to_idle(rig):
    await rig.online()
    await rig.do("press")
    await wait_for(rig, lambda v: v.screen is Screen.IDLE)
    await rig.do("press")
    await rig.do("long_press")
    await wait_for(rig, lambda v: v.screen is Screen.IDLE)


async def test_waiting_shows_position_wait_and_message(rig):
    await to_waiting(rig)
    assert (rig.c.view.position, rig.c.view.expected_wait_s) == (2, 600)
    view = await rig.central(type="visit.position", visit_id=VISIT, department="buergerbuero", position=1,
                             expected_wait_s=300)
    assert (view.position, view.expected_wait_s) == (1, 300)
    view = await rig.central(type="visit.message", visit_id=VISIT, text="Ich bin in 2 Minuten bei Ihnen")
    assert view.message == "Ich bin in 2 Minuten bei Ihnen"


async def test_messages_for_other_visits_are_ignored(rig):
    await to_waiting(rig)
    view = await rig.central(type="visit.position", visit_id="x" * 24, department="buergerbuero", position=9,
                             expected_wait_s=9000)
    assert view.position == 2


async def test_refusal_returns_to_idle_with_the_reason(rig):
    await rig.online()
    await rig.do("press")
    await rig.do("long_press")
    await rig.do("press")
    view = await rig.central(type="visit.refused", department="buergerbuero", reason="closed",
                             next_opening="2026-11-23T08:00:00+01:00")
    assert view.screen is Screen.IDLE and view.notice == "closed" and not rig.c.has_visit_data


async def test_a_request_central_refuses_with_an_error_returns_to_idle_at_once(rig):
    await rig.online()
    await rig.do("press")
    await rig.do("long_press")
    await rig.do("press")
    view = await rig.central(type="error", code="rate_limited", detail="one request per 20 s", ref="visit.request")
    assert view.screen is Screen.IDLE and view.notice == "rate_limited" and not rig.c.has_visit_data


async def test_unconfirmed_request_times_out_calmly(rig):
    await rig.online()
    await rig.do("press")
    await rig.do("long_press")
    await rig.do("press")
    await wait_for(rig, lambda v: v.screen is Screen.IDLE)
    assert rig.c.view.notice == "unreachable" and not rig.c.has_visit_data


async def test_long_press_while_waiting_cancels(rig):
    await to_waiting(rig)
    await rig.do("press")  # a short press does nothing while waiting
    assert rig.sent[-1].type == "visit.request"
    await rig.do("long_press")
    assert rig.sent[-1] == m.VisitCancel(type="visit.cancel", visit_id=VISIT)
    view = await rig.central(type="visit.ended", visit_id=VISIT, reason="cancelled")
    assert view.screen is Screen.IDLE and not rig.c.has_visit_data


async def test_pick_up_starts_the_call_and_relays_signaling(rig):
    await to_waiting(rig)
    view = await rig.central(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=TOKEN)
    assert view.screen is Screen.IN_CALL and rig.leds[-1] == "in_call"
    assert view.microphone_on and view.camera_on
    assert rig.calls[0].ice_servers == []
    assert rig.sent[-1].type == "rtc.offer" and rig.sent[-1].visit_id == VISIT
    await rig.central(type="rtc.answer", visit_id=VISIT, sdp="v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n")
    assert rig.calls[0].answer.startswith("v=0")
    await rig.central(type="rtc.candidate", visit_id=VISIT, candidate={"candidate": "candidate:1 1 udp 1 127.0.0.2 9 typ host",
                                                                         "sdpMid": "0", "sdpMLineIndex": 0})
    assert len(rig.calls[0].candidates) == 1


async def test_button_hangs_up_and_the_end_screen_returns_to_idle_in_german(rig):
    await rig.online()
    await rig.do("language", "ar")
    await rig.do("press")
    await rig.do("long_press")
    await rig.do("press")
    await rig.central(type="visit.queued", visit_id=VISIT, resume_token=TOKEN, department="buergerbuero",
                      position=1, expected_wait_s=0)
    await rig.central(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=TOKEN)
    await rig.do("press")
    assert rig.sent[-1] == m.VisitHangup(type="visit.hangup", visit_id=VISIT)
    view = await rig.central(type="visit.ended", visit_id=VISIT, reason="hangup_kiosk")
    assert view.screen is Screen.ENDED and rig.calls[0].closed and not rig.c.has_visit_data
    assert view.language == "ar"  # the goodbye is still in the citizen's language
    await wait_for(rig, lambda v: v.screen is Screen.IDLE)
    assert rig.c.view.language == "de"


async def test_clerk_hang_up_ends_the_call(rig):
    await to_waiting(rig)
    await rig.central(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=TOKEN)
    view = await rig.central(type="visit.ended", visit_id=VISIT, reason="hangup_staff")
    assert view.screen is Screen.ENDED and view.ended_reason == "hangup_staff" and rig.calls[0].closed


async def test_transfer_during_a_call_returns_to_waiting_in_the_new_department(rig):
    await to_waiting(rig)
    await rig.central(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=TOKEN)
    view = await rig.central(type="visit.transferred", visit_id=VISIT, department="standesamt", position=1,
                             expected_wait_s=300, resume_token=TOKEN)
    assert view.screen is Screen.WAITING and view.notice == "transferred" and view.selected == "standesamt"
    assert rig.calls[0].closed and rig.leds[-1] == "waiting"


async def test_reconnect_resumes_the_same_visit(rig):
    await to_waiting(rig)
    view = await rig.do("disconnected")
    assert view.screen is Screen.WAITING and not view.online and view.position == 2
    await rig.online()
    assert rig.sent[-1] == m.VisitResume(type="visit.resume", visit_id=VISIT, resume_token=TOKEN)
    view = await rig.central(type="visit.resumed", visit_id=VISIT, department="buergerbuero", state="waiting",
                             position=1, expected_wait_s=300, resume_token=TOKEN)
    assert view.screen is Screen.WAITING and view.online and view.position == 1


async def test_reconnect_after_the_visit_expired_ends_it(rig):
    await to_waiting(rig)
    await rig.do("disconnected")
    await rig.online()
    view = await rig.central(type="error", code="not_your_visit", detail="ended", ref="visit.resume")
    assert view.screen is Screen.ENDED and not rig.c.has_visit_data


async def test_request_lost_with_the_connection_is_asked_again(rig):
    await rig.online()
    await rig.do("press")
    await rig.do("long_press")
    await rig.do("press")
    await rig.do("disconnected")
    await rig.online()
    assert [s.type for s in rig.sent] == ["ping", "visit.request", "ping", "visit.request"]


async def test_refused_token_is_a_fault_until_reenrolled(rig):
    view = await rig.do("fault", "token_refused")
    assert view.screen is Screen.FAULT and rig.leds[-1] == "fault"
    assert (await rig.do("press")).screen is Screen.FAULT
    assert (await rig.online()).screen is Screen.IDLE


async def test_offline_idle_press_does_nothing(rig):
    view = await rig.do("press")
    assert view.screen is Screen.IDLE and not rig.sent


# == central away, and the way back ======================================================

TOKENS = ["a" * 24 + "." + "1" * 20, "a" * 24 + "." + "2" * 20, "a" * 24 + "." + "3" * 20,
          "a" * 24 + "." + "4" * 20]


def resumes(rig):
    return [s.resume_token for s in rig.sent if s.type == "visit.resume"]


async def reconnect(rig):
    await rig.do("disconnected")
    await rig.online()


async def test_after_welcome_the_first_message_is_a_ping_when_there_is_nothing_to_resume(rig):
    await rig.online()
    assert rig.sent == [m.Ping(type="ping")]  # central ends at once a visit this unit had before it restarted


async def test_every_token_central_sends_replaces_the_one_held_for_the_resume(rig):
    await to_waiting(rig)
    await rig.central(type="visit.transferred", visit_id=VISIT, department="standesamt", position=3,
                      expected_wait_s=900, resume_token=TOKENS[0])
    await reconnect(rig)
    await rig.central(type="visit.resumed", visit_id=VISIT, department="standesamt", state="waiting", position=3,
                      expected_wait_s=900, resume_token=TOKENS[1])
    await reconnect(rig)
    await rig.central(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=TOKENS[2])
    await reconnect(rig)
    await rig.central(type="call.failed", visit_id=VISIT, reason="media_timeout", position=1, expected_wait_s=60,
                      resume_token=TOKENS[3])
    await reconnect(rig)
    assert resumes(rig) == [TOKENS[0], TOKENS[1], TOKENS[2], TOKENS[3]]
    assert not any(s.type == "ping" for s in rig.sent[1:])  # never a ping that would end the visit


async def test_while_central_is_away_the_waiting_citizen_keeps_screen_and_place(rig):
    await to_waiting(rig)
    view = await rig.do("disconnected")
    assert view.screen is Screen.WAITING and not view.online and view.position == 2 and rig.leds[-1] == "waiting"


async def test_a_call_goes_on_while_central_is_away_and_the_hang_up_reaches_central_when_back(rig):
    await to_waiting(rig)
    await rig.central(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=TOKENS[0])
    rig.calls[0].report("connected")
    await rig.c.settle()
    view = await rig.do("disconnected")
    assert view.screen is Screen.IN_CALL and not rig.calls[0].closed  # media is peer to peer

    view = await rig.do("hangup")  # the citizen's hang-up ends the call here at once
    assert view.screen is Screen.ENDED and rig.calls[0].closed
    assert rig.c.has_visit_data  # ... but central has yet to hear of it

    await rig.online()
    assert rig.sent[-1] == m.VisitResume(type="visit.resume", visit_id=VISIT, resume_token=TOKENS[0])
    await rig.central(type="visit.resumed", visit_id=VISIT, department="buergerbuero", state="in_call",
                      resume_token=TOKENS[1])
    assert rig.sent[-1] == m.VisitHangup(type="visit.hangup", visit_id=VISIT)
    await rig.central(type="visit.ended", visit_id=VISIT, reason="hangup_kiosk")
    assert not rig.c.has_visit_data


async def test_cancelling_while_central_is_away_leaves_at_once_and_tells_central_when_back(rig):
    await to_waiting(rig)
    await rig.do("disconnected")
    view = await rig.do("long_press")
    assert view.screen is Screen.IDLE
    await rig.online()
    assert rig.sent[-1] == m.VisitResume(type="visit.resume", visit_id=VISIT, resume_token=TOKEN)
    await rig.central(type="visit.resumed", visit_id=VISIT, department="buergerbuero", state="waiting", position=2,
                      expected_wait_s=600, resume_token=TOKEN)
    assert rig.sent[-1] == m.VisitCancel(type="visit.cancel", visit_id=VISIT)
    assert rig.c.view.screen is Screen.IDLE and rig.c.view.position is None  # the left visit is not shown again
    await rig.central(type="visit.ended", visit_id=VISIT, reason="cancelled")
    assert not rig.c.has_visit_data


async def test_a_left_visit_central_no_longer_knows_is_forgotten(rig):
    await to_waiting(rig)
    await rig.do("disconnected")
    await rig.do("long_press")
    await rig.online()
    await rig.central(type="error", code="not_your_visit", detail="ended", ref="visit.resume")
    assert not rig.c.has_visit_data and rig.c.view.screen is Screen.IDLE


async def test_a_position_update_crossing_the_cancel_is_not_answered(rig):
    await to_waiting(rig)
    await rig.do("long_press")
    sent = len(rig.sent)
    await rig.central(type="visit.position", visit_id=VISIT, department="buergerbuero", position=1,
                      expected_wait_s=0)
    assert len(rig.sent) == sent and rig.c.view.screen is Screen.IDLE and rig.c.view.position is None


async def test_a_pick_up_that_crosses_the_cancel_is_hung_up(rig):
    await to_waiting(rig)
    await rig.do("long_press")
    await rig.central(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=TOKENS[0])
    assert rig.sent[-1] == m.VisitHangup(type="visit.hangup", visit_id=VISIT)
    assert not rig.calls and rig.c.view.screen is Screen.IDLE


# == the call's media =====================================================================

async def test_the_peer_connections_state_goes_to_central(rig):
    await to_waiting(rig)
    await rig.central(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=TOKEN)
    rig.calls[0].report("connected")
    await rig.c.settle()
    assert rig.sent[-1] == m.RtcState(type="rtc.state", visit_id=VISIT, state="connected")


async def test_failed_media_goes_back_to_waiting_and_central_gives_the_new_place(rig):
    await to_waiting(rig)
    await rig.central(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=TOKEN)
    rig.calls[0].report("failed")
    await rig.c.settle()
    assert rig.sent[-1] == m.RtcState(type="rtc.state", visit_id=VISIT, state="failed")
    assert rig.calls[0].closed and rig.c.view.screen is Screen.WAITING and rig.c.view.notice == "call_failed"
    view = await rig.central(type="call.failed", visit_id=VISIT, reason="ice_failed", position=1, expected_wait_s=0,
                             resume_token=TOKENS[0])
    assert view.screen is Screen.WAITING and view.notice == "call_failed" and view.position == 1
    assert rig.leds[-1] == "waiting"
    await reconnect(rig)
    assert resumes(rig)[-1] == TOKENS[0]


async def test_call_failed_from_central_closes_the_call(rig):
    await to_waiting(rig)
    await rig.central(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=TOKEN)
    view = await rig.central(type="call.failed", visit_id=VISIT, reason="media_timeout", position=1,
                             expected_wait_s=30, resume_token=TOKENS[0])
    assert rig.calls[0].closed and view.screen is Screen.WAITING and view.notice == "call_failed"
    assert (view.position, view.expected_wait_s, view.selected) == (1, 30, "buergerbuero")
    rig.calls[0].report("connected")  # a closed call's late news changes nothing
    await rig.c.settle()
    assert rig.sent[-1].type == "rtc.offer" and rig.c.view.screen is Screen.WAITING


@pytest.mark.parametrize("connected, reported, words", [
    (False, False, "central ended the call before it connected: ice_failed"),
    (True, False, "central ended the call after it had connected here: ice_failed (the clerk's side reported"),
    (True, True, "central ended the call this kiosk reported failed (ice_failed)"),
])
async def test_the_journal_says_whose_report_ended_the_call(rig, caplog, connected, reported, words):
    await to_waiting(rig)
    await rig.central(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=TOKEN)
    if connected:
        rig.calls[0].report("connected")
    if reported:
        rig.calls[0].report("failed")
    await rig.c.settle()
    with caplog.at_level(logging.WARNING, logger="appliance.controller"):
        view = await rig.central(type="call.failed", visit_id=VISIT, reason="ice_failed", position=1,
                                 expected_wait_s=0, resume_token=TOKENS[0])
    assert view.screen is Screen.WAITING and rig.calls[0].closed
    said = [r.getMessage() for r in caplog.records if "central ended the call" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(words), said


async def test_media_that_never_connects_is_reported_failed_by_the_kiosk_itself():
    rig = Rig(Timeouts(media_s=0.2))
    try:
        await to_waiting(rig)
        await rig.central(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=TOKEN)
        await wait_for(rig, lambda v: v.screen is Screen.WAITING)
        assert rig.sent[-1] == m.RtcState(type="rtc.state", visit_id=VISIT, state="failed")
        assert rig.c.view.notice == "call_failed" and rig.calls[0].closed
    finally:
        rig.task.cancel()


async def test_a_connected_call_is_not_timed_out():
    rig = Rig(Timeouts(media_s=0.2))
    try:
        await to_waiting(rig)
        await rig.central(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=TOKEN)
        rig.calls[0].report("connected")
        await asyncio.sleep(0.4)
        await rig.c.settle()
        assert rig.c.view.screen is Screen.IN_CALL and not rig.calls[0].closed
    finally:
        rig.task.cancel()


# == another unit with this unit's token ===================================================

async def test_replaced_is_a_fault_that_drops_the_visit(rig):
    await to_waiting(rig)
    await rig.central(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=TOKEN)
    view = await rig.do("fault", "replaced")
    assert view.screen is Screen.FAULT and view.fault == "replaced" and rig.leds[-1] == "fault"
    assert rig.calls[0].closed and not rig.c.has_visit_data


# -- a device of the call fails (appliance/call/devices.py reports it through the call's state callback) --

async def in_call(rig):
    await to_waiting(rig)
    await rig.central(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=TOKEN)
    rig.calls[-1].report("connected")
    await rig.c.settle()
    rig.sent.clear()


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
