"""A call whose media does not connect: both sides learn it, the citizen keeps the head of the queue,
and IT gets a counter."""
from __future__ import annotations

import asyncio

import pytest

from tests.polling import until


async def _two_waiting(central):
    clerk = await central.clerk()
    first, second = await central.kiosk(), await central.new_kiosk("Bibliothek")
    visits = []
    for kiosk in (first, second):
        await kiosk.send(type="visit.request", department="buergerbuero")
        visits.append(await kiosk.recv("visit.queued"))
    return clerk, first, second, visits[0], visits[1]


async def _picked_up(clerk, kiosk, visit) -> dict:
    await clerk.send(type="visit.pickup", visit_id=visit["visit_id"])
    await clerk.recv("call.assigned")
    return await kiosk.recv("call.start")


async def _failures(central) -> dict:
    """(day, department) -> calls that failed, from the daily statistics (written in the background)."""
    today = central.hub.now().date()
    async with asyncio.timeout(5):
        while True:
            counted = {(s.day, s.department): s.call_failures for s in await central.db.daily_stats(today)
                       if s.call_failures}
            if counted:
                return counted
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("how", ["media_timeout", "kiosk_reports_failed", "console_reports_failed"])
async def test_a_call_that_cannot_connect_puts_the_citizen_back_at_the_head(central, how):
    central.hub.call_connect_timeout_s = 0.3 if how == "media_timeout" else 60
    clerk, kiosk, behind, visit, _ = await _two_waiting(central)
    start = await _picked_up(clerk, kiosk, visit)
    await behind.recv("visit.position")
    if how == "kiosk_reports_failed":
        await kiosk.send(type="rtc.state", visit_id=visit["visit_id"], state="failed")
    elif how == "console_reports_failed":
        await clerk.send(type="rtc.state", visit_id=visit["visit_id"], state="failed")
    reason = "media_timeout" if how == "media_timeout" else "ice_failed"

    failed = await kiosk.recv("call.failed")
    assert (failed["visit_id"], failed["reason"], failed["position"]) == (visit["visit_id"], reason, 1)
    assert failed["resume_token"] != start["resume_token"]  # that one said "in a call"
    told = await clerk.recv("call.failed")
    assert (told["visit_id"], told["reason"]) == (visit["visit_id"], reason)
    assert told.get("position") is None and told.get("resume_token") is None  # the citizen's place is theirs
    assert (await clerk.recv("presence.changed"))["presence"] == "available"
    joined = await clerk.recv("queue.joined")
    assert (joined["visit"]["visit_id"], joined["reason"]) == (visit["visit_id"], "call_failed")
    assert (await behind.recv("visit.position"))["position"] == 2  # the failed visit is first again
    assert [v.id for v in central.hub.rooms.waiting("buergerbuero")][0] == visit["visit_id"]
    assert await _failures(central) == {(central.hub.now().date(), "buergerbuero"): 1}

    # The clerk (or another) tries again; the kiosk's new token still resumes the visit.
    await kiosk.ws.close()
    again = await central.kiosk()
    await again.send(type="visit.resume", visit_id=visit["visit_id"], resume_token=failed["resume_token"])
    assert (await again.recv("visit.resumed"))["position"] == 1
    await clerk.send(type="visit.pickup", department="buergerbuero")
    assert (await clerk.recv("call.assigned"))["visit"]["visit_id"] == visit["visit_id"]
    assert (await again.recv("call.start"))["visit_id"] == visit["visit_id"]


async def test_connected_media_stops_the_timer(central):
    central.hub.call_connect_timeout_s = 60
    clerk, kiosk, _, visit, _ = await _two_waiting(central)
    await _picked_up(clerk, kiosk, visit)
    assert visit["visit_id"] in central.hub._media
    await clerk.send(type="rtc.state", visit_id=visit["visit_id"], state="connected")
    await clerk.send(type="ping")
    await clerk.recv("pong")
    assert visit["visit_id"] in central.hub._media  # the console's view alone does not count
    await kiosk.send(type="rtc.state", visit_id=visit["visit_id"], state="connected")
    await kiosk.send(type="ping")
    await kiosk.recv("pong")
    assert visit["visit_id"] not in central.hub._media


async def test_the_media_timer_starts_when_an_absent_kiosk_gets_call_start(central):
    central.hub.resume_grace_s = 30
    clerk, kiosk, _, visit, _ = await _two_waiting(central)
    kiosk_id = central.hub.rooms.get(visit["visit_id"]).kiosk_id
    await kiosk.ws.close()
    await until(lambda: kiosk_id not in central.hub.kiosks, 5, every=0.01, what="central noticing the kiosk left")
    await clerk.send(type="visit.pickup", visit_id=visit["visit_id"])
    await clerk.recv("call.assigned")
    assert visit["visit_id"] not in central.hub._media  # nobody to connect to yet

    again = await central.kiosk()
    await again.send(type="visit.resume", visit_id=visit["visit_id"], resume_token=visit["resume_token"])
    await again.recv("call.start")
    assert visit["visit_id"] in central.hub._media


async def test_a_late_report_on_a_call_that_is_over_changes_nothing(central):
    central.hub.call_connect_timeout_s = 60
    clerk, kiosk, _, visit, _ = await _two_waiting(central)
    await _picked_up(clerk, kiosk, visit)
    await kiosk.send(type="rtc.state", visit_id=visit["visit_id"], state="failed")
    await kiosk.recv("call.failed")
    await kiosk.send(type="rtc.state", visit_id=visit["visit_id"], state="failed")  # its peer connection, later
    await kiosk.send(type="ping")
    assert [f["type"] for f in [await kiosk.recv()]] == ["pong"]
    assert await _failures(central) == {(central.hub.now().date(), "buergerbuero"): 1}
