"""The call's media as the kiosk's state machine sees it: the peer connection's state goes to central, failed or
never-connecting media send the citizen back to waiting, and the journal says whose report ended a call."""
from __future__ import annotations

import asyncio
import logging

import pytest

from appliance.controller.machine import Timeouts
from appliance.controller.view import Screen
from protocol import messages as m
from tests.appliance import controller_rig
from tests.appliance.controller_rig import TOKEN, TOKENS, VISIT, Rig, reconnect, resumes, to_waiting, wait_for

rig = controller_rig.rig  # the rig's fixture, here too


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
