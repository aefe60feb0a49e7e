"""A visit on the kiosk, transition by transition, with central played by the test: idle, choosing an office,
consent, waiting, refused or unanswered requests, the call and its end."""
from __future__ import annotations

from appliance.controller.view import Screen
from protocol import messages as m
from tests.appliance import controller_rig
from tests.appliance.controller_rig import TOKEN, VISIT, to_waiting, wait_for

rig = controller_rig.rig  # the rig's fixture, here too


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

async def test_offline_idle_press_does_nothing(rig):
    view = await rig.do("press")
    assert view.screen is Screen.IDLE and not rig.sent
