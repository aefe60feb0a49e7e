"""Visits across lost connections: a kiosk away during pick-up, a restarted appliance, a lost clerk."""
from __future__ import annotations

import pytest

from tests.polling import until

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


async def _waiting_visit(central, clerk, kiosk) -> dict:
    await kiosk.send(type="visit.request", department="buergerbuero")
    visit = await kiosk.recv("visit.queued")
    await clerk.recv("queue.joined")
    return visit


async def _go_away(central, kiosk) -> None:
    kiosk_id = next(iter(central.hub.kiosks))
    await kiosk.ws.close()
    await until(lambda: kiosk_id not in central.hub.kiosks, 5, every=0.01, what="central noticing the kiosk left")


# == item 10: picked up while the kiosk was away ==================================

async def test_a_visit_picked_up_while_its_kiosk_is_away_starts_when_the_kiosk_returns(central):
    central.hub.resume_grace_s = 30  # the kiosk comes back in milliseconds; never race the timer
    clerk, kiosk = await central.clerk(), await central.kiosk()
    visit = await _waiting_visit(central, clerk, kiosk)
    await _go_away(central, kiosk)

    await clerk.send(type="visit.pickup", visit_id=visit["visit_id"])
    await clerk.recv("call.assigned")

    again = await central.kiosk()
    await again.send(type="visit.resume", visit_id=visit["visit_id"], resume_token=visit["resume_token"])
    resumed = await again.recv("visit.resumed")
    assert resumed["state"] == "in_call"
    start = await again.recv("call.start")  # the kiosk never had it: it comes now
    assert start["visit_id"] == visit["visit_id"]
    await again.send(type="rtc.offer", visit_id=visit["visit_id"], sdp=SDP)
    assert (await clerk.recv("rtc.offer"))["sdp"] == SDP


async def test_a_fresh_negotiation_asked_for_while_the_kiosk_is_away_starts_when_it_returns(central):
    central.hub.resume_grace_s = 30
    clerk, kiosk = await central.clerk(), await central.kiosk()
    visit = await _waiting_visit(central, clerk, kiosk)
    await clerk.send(type="visit.pickup", visit_id=visit["visit_id"])
    await clerk.recv("call.assigned")
    await kiosk.recv("call.start")
    await _go_away(central, kiosk)

    await clerk.send(type="call.restart", visit_id=visit["visit_id"])  # e.g. the clerk reloaded the page
    again = await central.kiosk()
    await again.send(type="visit.resume", visit_id=visit["visit_id"], resume_token=visit["resume_token"])
    assert (await again.recv("visit.resumed"))["state"] == "in_call"
    assert (await again.recv("call.start"))["visit_id"] == visit["visit_id"]


async def test_a_visit_picked_up_while_its_kiosk_stays_away_ends_on_both_sides(central):
    clerk, kiosk = await central.clerk(), await central.kiosk()
    visit = await _waiting_visit(central, clerk, kiosk)
    await _go_away(central, kiosk)

    await clerk.send(type="visit.pickup", visit_id=visit["visit_id"])
    await clerk.recv("call.assigned")
    ended = await clerk.recv("visit.ended", timeout=5)  # grace is 1 s in tests; the pick-up did not stop it
    assert ended["visit_id"] == visit["visit_id"] and ended["reason"] == "kiosk_lost"
    assert (await clerk.recv("presence.changed"))["presence"] == "available"
    assert len(central.hub.rooms) == 0


async def test_a_kiosk_coming_back_does_not_stop_the_lost_clerks_clock(central):
    central.hub.resume_grace_s = 1.5
    clerk, kiosk = await central.clerk(), await central.kiosk()
    visit = await _waiting_visit(central, clerk, kiosk)
    await _go_away(central, kiosk)
    await clerk.send(type="visit.pickup", visit_id=visit["visit_id"])
    await clerk.recv("call.assigned")
    await clerk.ws.close()  # the clerk is gone too, and does not come back

    again = await central.kiosk()
    await again.send(type="visit.resume", visit_id=visit["visit_id"], resume_token=visit["resume_token"])
    assert (await again.recv("visit.resumed"))["state"] == "in_call"
    ended = await again.recv("visit.ended", timeout=5)
    assert ended["reason"] == "staff_lost"
    assert len(central.hub.rooms) == 0


# == item 11: the appliance restarted and forgot its visit =========================

@pytest.mark.parametrize("first", ["ping", "visit.request"])
@pytest.mark.parametrize("old_socket", ["closed", "still_open"])
async def test_a_restarted_appliance_frees_its_old_place_at_once(central, first, old_socket):
    central.hub.resume_grace_s = 60  # only the new rule may end the visit here
    clerk, kiosk = await central.clerk(), await central.kiosk()
    old = await _waiting_visit(central, clerk, kiosk)
    if old_socket == "closed":
        await _go_away(central, kiosk)
    # else: central has not noticed yet that the old connection is dead; the new one replaces it.

    again = await central.kiosk()
    if first == "ping":
        await again.send(type="ping")
        await again.recv("pong")
        await again.send(type="visit.request", department="buergerbuero")
    else:
        await again.send(type="visit.request", department="buergerbuero")
    left = await clerk.recv("queue.left")
    assert left["visit_id"] == old["visit_id"] and left["reason"] == "kiosk_lost"
    queued = await again.recv("visit.queued")  # not refused with already_waiting
    assert queued["visit_id"] != old["visit_id"] and queued["position"] == 1
    assert [v.id for v in central.hub.rooms.waiting("buergerbuero")] == [queued["visit_id"]]


async def test_a_kiosk_that_resumes_first_keeps_its_place_after_other_messages(central):
    central.hub.resume_grace_s = 60
    clerk, kiosk = await central.clerk(), await central.kiosk()
    visit = await _waiting_visit(central, clerk, kiosk)
    await _go_away(central, kiosk)
    again = await central.kiosk()
    await again.send(type="visit.resume", visit_id=visit["visit_id"], resume_token=visit["resume_token"])
    await again.recv("visit.resumed")
    await again.send(type="ping")
    await again.recv("pong")
    assert [f["type"] for f in await clerk.quiet()] == []
    assert central.hub.rooms.get(visit["visit_id"]) is not None


# == item 5 (protocol): the answers match the error table ===========================

async def test_error_codes_match_the_protocol_table(central):
    clerk, kiosk = await central.clerk(), await central.kiosk()  # Frau Demir serves every department
    await kiosk.send(type="visit.request", department="standesamt")
    visit = await kiosk.recv("visit.queued")
    await clerk.send(type="visit.pickup", visit_id=visit["visit_id"])
    await clerk.recv("call.assigned")
    other = await central.new_clerk("nur-buergerbuero", ["buergerbuero"])

    # Another department's visit, in a call: not this clerk's business at all.
    for message in ({"type": "visit.pickup", "visit_id": visit["visit_id"]},
                    {"type": "visit.transfer", "visit_id": visit["visit_id"], "department": "buergerbuero"},
                    {"type": "visit.message", "visit_id": visit["visit_id"], "text": "Hallo"}):
        await other.send(**message)
        error = await other.recv("error")
        assert (error["code"], error["ref"]) == ("forbidden", message["type"])

    await clerk.send(type="visit.hangup", visit_id=visit["visit_id"])
    await clerk.recv("visit.ended")
    await clerk.send(type="visit.pickup", visit_id=visit["visit_id"])  # it has ended
    error = await clerk.recv("error")
    assert (error["code"], error["ref"]) == ("not_your_visit", "visit.pickup")


async def test_a_failure_inside_central_is_answered_as_internal_error(central):
    def broken(visit):
        raise RuntimeError("simulated bug")

    central.hub.rooms.add = broken
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    error = await kiosk.recv("error")
    assert (error["code"], error["ref"]) == ("internal_error", "visit.request")
    await kiosk.send(type="ping")
    await kiosk.recv("pong")  # the socket carries on
