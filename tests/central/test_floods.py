"""A kiosk token cannot flood: request/cancel cycles are limited per kiosk, and the statistics do not grow."""
from __future__ import annotations

import asyncio
import datetime as dt

from central.live.limits import VISIT_REQUESTS, Buckets


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def settled(central) -> None:
    """Wait for central's background statistics writes."""
    while central.app["background"]:
        await asyncio.gather(*list(central.app["background"]))


async def test_300_request_cancel_cycles_make_three_visits_and_count_none(central):
    clock = FakeClock()
    central.hub.visit_requests = Buckets(VISIT_REQUESTS, clock=clock)
    clerk = await central.clerk()
    colleague = await central.new_clerk("kollege", ["buergerbuero"])
    kiosk = await central.kiosk()

    replies = []
    for _ in range(300):  # request, cancel at once, again: as in the review
        await kiosk.send(type="visit.request", department="buergerbuero")
        replies.append(reply := await kiosk.recv())
        if reply["type"] == "visit.queued":
            await kiosk.send(type="visit.cancel", visit_id=reply["visit_id"])
            assert (await kiosk.recv("visit.ended"))["reason"] == "cancelled"
    queued = [r for r in replies if r["type"] == "visit.queued"]
    limited = [r for r in replies if r["type"] == "error" and r["code"] == "rate_limited"]
    assert len(queued) == VISIT_REQUESTS.capacity == 3
    assert len(limited) == 297 and {(r["ref"], r["retry_after_s"]) for r in limited} == {("visit.request", 20)}
    assert "try again in 20 s" in limited[0]["detail"]

    # Every console heard of these three at most, not of 300.
    for console in (clerk, colleague):
        await console.quiet(0.3)
        joined = [m for m in console.inbox if m["type"] == "queue.joined"]
        assert len(joined) == 3, len(joined)

    # The citizen who waits the hinted time gets through.
    await kiosk.send(type="visit.request", department="buergerbuero")
    assert (await kiosk.recv())["code"] == "rate_limited"
    clock.now += 20
    await kiosk.send(type="visit.request", department="buergerbuero")
    visit_id = (await kiosk.recv("visit.queued"))["visit_id"]
    await kiosk.send(type="visit.cancel", visit_id=visit_id)
    await kiosk.recv("visit.ended")

    # Visits cancelled within seconds are no visits: the statistics stay empty.
    await settled(central)
    assert await central.db.daily_stats(dt.date.today() - dt.timedelta(days=1)) == []


async def test_a_visit_cancelled_after_a_real_wait_is_counted(central):
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    visit_id = (await kiosk.recv("visit.queued"))["visit_id"]
    central.hub.rooms.get(visit_id).arrived_mono -= 60  # as if the citizen had waited a minute
    await kiosk.send(type="visit.cancel", visit_id=visit_id)
    await kiosk.recv("visit.ended")
    await settled(central)
    [day] = await central.db.daily_stats(dt.date.today() - dt.timedelta(days=1))
    assert (day.department, day.visits, day.calls) == ("buergerbuero", 1, 0)


async def test_limits_are_per_kiosk(central):
    central.hub.visit_requests = Buckets(VISIT_REQUESTS, clock=FakeClock())
    flooding, other = await central.kiosk(), await central.new_kiosk("Bibliothek")
    for _ in range(5):
        await flooding.send(type="visit.request", department="buergerbuero")
        reply = await flooding.recv()
        if reply["type"] == "visit.queued":
            await flooding.send(type="visit.cancel", visit_id=reply["visit_id"])
            await flooding.recv("visit.ended")
    assert reply["code"] == "rate_limited"
    await other.send(type="visit.request", department="buergerbuero")
    assert (await other.recv())["type"] == "visit.queued"
