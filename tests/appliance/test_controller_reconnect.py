"""Central away, and the way back: the kiosk resumes its visit with the latest token central sent, the call and
the waiting citizen carry on meanwhile, and what the citizen did while central was away reaches central."""
from __future__ import annotations

from appliance.controller.view import Screen
from protocol import messages as m
from tests.appliance import controller_rig
from tests.appliance.controller_rig import TOKEN, TOKENS, VISIT, reconnect, resumes, to_waiting

rig = controller_rig.rig  # the rig's fixture, here too


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
