"""A booked citizen asks for a place with their code: ahead of walk-ins during their slot, or refused with why."""
from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from central.bookings.slots import SlotSettings, forget_after, slots_of_day
from central.rooms.resume_token import ResumeTokens
from tests.central.test_restart_in_process import restarted

# The demo's Ordnungsamt is open Monday 08:00-12:00 (Berlin); 2026-12-07 is a Monday.
MONDAY = dt.date(2026, 12, 7)
BERLIN_9 = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)  # 09:00 in Berlin


async def book(central, department: str = "ordnungsamt", at: str = "09:00") -> str:
    """A booking of the 15-minute slot at ``at`` (Berlin) on MONDAY; its code."""
    hours = central.hub.departments[department].hours
    await central.db.bookings.save_settings(department, SlotSettings(slot_minutes=15, parallel=2))
    slot = next(s for s in slots_of_day(hours, SlotSettings(15), MONDAY) if f"{s.start:%H:%M}" == at)
    return await central.db.bookings.create(department, slot, 2, forget_after(hours, slot))


async def walk_ins(central, n: int, department: str = "ordnungsamt") -> list:
    kiosks = []
    for i in range(n):
        kiosk = await central.new_kiosk(f"Ort {i}")
        await kiosk.send(type="visit.request", department=department)
        assert (await kiosk.recv("visit.queued"))["position"] == i + 1
        kiosks.append(kiosk)
    return kiosks


async def test_a_booked_visit_goes_ahead_of_walk_ins_during_its_slot(central):
    central.clock.fixed = BERLIN_9 + dt.timedelta(minutes=5)
    code = await book(central)
    clerk = await central.clerk()
    first, second = await walk_ins(central, 2)
    booked = await central.new_kiosk("Bibliothek")
    await booked.send(type="visit.request", department="ordnungsamt", booking=code, language="uk")
    queued = await booked.recv("visit.queued")
    assert queued["position"] == 1
    assert (await first.recv("visit.position"))["position"] == 2
    assert (await second.recv("visit.position"))["position"] == 3
    joined = [f for f in [await clerk.recv("queue.joined") for _ in range(3)]
              if f["visit"]["visit_id"] == queued["visit_id"]][0]
    assert joined["visit"]["slot_start"] == BERLIN_9.timestamp()

    await clerk.send(type="visit.pickup", department="ordnungsamt")
    assert (await clerk.recv("call.assigned"))["visit"]["visit_id"] == queued["visit_id"]

    # Used: the same code does not work a second time, from anywhere.
    again = await central.new_kiosk("Rathaus")
    await again.send(type="visit.request", department="ordnungsamt", booking=code)
    assert (await again.recv("visit.refused"))["reason"] == "booking_unknown"
    assert (await central.db.bookings.daily(MONDAY))[0].kept == 1


async def test_unknown_cancelled_and_other_department_codes_are_refused(central):
    central.clock.fixed = BERLIN_9
    code, cancelled = await book(central), await book(central)
    assert await central.db.bookings.cancel(cancelled)
    kiosk = await central.kiosk()
    for department, booking in (("ordnungsamt", "7K3M9QX2"), ("ordnungsamt", cancelled), ("buergerbuero", code)):
        await kiosk.send(type="visit.request", department=department, booking=booking)
        refused = await kiosk.recv("visit.refused")
        assert (refused["reason"], refused["department"]) == ("booking_unknown", department)
    assert central.hub.rooms.all() == []
    # A code the protocol cannot carry (lower case, with its dash) is bad input: normalise before sending.
    await kiosk.send(type="visit.request", department="ordnungsamt", booking="7k3m-9qx2")
    assert (await kiosk.recv("error"))["code"] == "invalid_field"


async def test_a_booking_at_another_time_is_refused_with_its_time(central):
    code = await book(central, at="09:00")
    for now in (BERLIN_9 - dt.timedelta(minutes=11), BERLIN_9 + dt.timedelta(minutes=15),
                BERLIN_9 + dt.timedelta(days=1)):
        central.clock.fixed = now
        kiosk = await central.new_kiosk()  # one kiosk may ask three times in a row (limits.VISIT_REQUESTS)
        await kiosk.send(type="visit.request", department="ordnungsamt", booking=code)
        refused = await kiosk.recv("visit.refused")
        assert (refused["reason"], refused["booked_for"]) == ("booking_other_time", "2026-12-07T09:00:00+01:00")
    # Still unused: at the right time it works.
    central.clock.fixed = BERLIN_9 + dt.timedelta(minutes=14)
    kiosk = await central.new_kiosk()
    await kiosk.send(type="visit.request", department="ordnungsamt", booking=code)
    assert (await kiosk.recv("visit.queued"))["position"] == 1


async def test_an_early_booked_visit_waits_as_a_walk_in_until_its_slot_begins(central):
    central.clock.fixed = BERLIN_9 - dt.timedelta(minutes=10)  # 08:50: the earliest check-in
    code = await book(central)
    (walk_in,) = await walk_ins(central, 1)
    booked = await central.new_kiosk("Bibliothek")
    await booked.send(type="visit.request", department="ordnungsamt", booking=code)
    queued = await booked.recv("visit.queued")
    assert queued["position"] == 2
    assert await walk_in.quiet() == []

    central.clock.fixed = BERLIN_9
    central.hub._slot_began(queued["visit_id"])  # the timer the hub set for 09:00
    assert (await booked.recv("visit.position"))["position"] == 1
    assert (await walk_in.recv("visit.position"))["position"] == 2


async def test_an_early_check_in_before_opening_is_accepted(central):
    central.clock.fixed = BERLIN_9 - dt.timedelta(hours=1, minutes=5)  # 07:55, the office opens at 08:00
    code = await book(central, at="08:00")
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="ordnungsamt")
    assert (await kiosk.recv("visit.refused"))["reason"] == "closed"  # walk-ins wait for the opening
    await kiosk.send(type="visit.request", department="ordnungsamt", booking=code)
    assert (await kiosk.recv("visit.queued"))["position"] == 1


async def test_a_restored_booked_visit_keeps_its_priority(central):
    central.clock.fixed = BERLIN_9
    code = await book(central)
    _, walk_token = await central.db.create_kiosk("Ort")
    walk_in = await central.kiosk(walk_token)
    await walk_in.send(type="visit.request", department="ordnungsamt")
    walked = await walk_in.recv("visit.queued")
    _, booked_token = await central.db.create_kiosk("Bibliothek")
    booked = await central.kiosk(booked_token)
    await booked.send(type="visit.request", department="ordnungsamt", booking=code)
    queued = await booked.recv("visit.queued")
    assert queued["position"] == 1
    async with restarted(central) as again:
        # The walk-in comes back first; the booked visit still goes ahead of it.
        for token, visit in ((walk_token, walked), (booked_token, queued)):
            kiosk = await again.kiosk(token)
            await kiosk.send(type="visit.resume", visit_id=visit["visit_id"], resume_token=visit["resume_token"])
            await kiosk.recv("visit.resumed")
        assert [v.id for v in again.hub.rooms.waiting("ordnungsamt")] == [queued["visit_id"], walked["visit_id"]]
        assert again.hub.rooms.get(queued["visit_id"]).slot_start == BERLIN_9.timestamp()


def test_a_resume_token_carries_the_slot_start():
    from central.rooms import Visit

    tokens = ResumeTokens("k" * 32, 3600)
    visit = Visit(kiosk_id=1, kiosk_location="x", department="d", language="de", slot_start=1_765_000_000.0,
                  booking="7K3M9QX2")
    claims = tokens.verify(tokens.issue(visit))
    assert (claims.slot_start, claims.booking) == (1_765_000_000.0, "7K3M9QX2")
    walk_in = Visit(kiosk_id=1, kiosk_location="x", department="d", language="de")
    assert (tokens.verify(tokens.issue(walk_in)).slot_start, tokens.verify(tokens.issue(walk_in)).booking) == (None, None)


async def test_book_slot_checks_the_request(central):
    from central.bookings.service import book_slot, free_slots
    from central.bookings.slots import BookingError

    central.clock.fixed = BERLIN_9
    dept = central.hub.departments["ordnungsamt"]
    berlin = dt.timezone(dt.timedelta(hours=1))
    at_ten = dt.datetime(2026, 12, 7, 10, 0, tzinfo=berlin)
    with pytest.raises(BookingError) as refused:
        await book_slot(central.db, dept, at_ten, BERLIN_9)
    assert refused.value.reason == "not_bookable"
    await central.db.bookings.save_settings("ordnungsamt", SlotSettings(slot_minutes=30, parallel=1, days_ahead=7))
    booked = await book_slot(central.db, dept, at_ten, BERLIN_9)
    assert (booked.department, booked.slot.start) == ("ordnungsamt", at_ten)
    free = {f"{s.start:%H:%M}": n for s, n in await free_slots(central.db, dept, MONDAY, BERLIN_9)}
    assert free == {"09:30": 1, "10:00": 0, "10:30": 1, "11:00": 1, "11:30": 1,  # 08:00-12:00 from now on
                    "14:00": 1, "14:30": 1, "15:00": 1, "15:30": 1}          # and 14:00-16:00
    for start, reason in ((at_ten, "full"), (at_ten.replace(minute=10), "not_on_grid"),
                          (at_ten.replace(hour=8), "past"), (at_ten + dt.timedelta(days=2), "closed_day"),
                          (at_ten + dt.timedelta(days=14), "too_far"), (at_ten - dt.timedelta(days=7), "past")):
        with pytest.raises(BookingError) as refused:
            await book_slot(central.db, dept, start, BERLIN_9)
        assert refused.value.reason == reason, (start, refused.value)


async def test_a_code_can_be_looked_up_without_using_it(central):
    code = await book(central, at="09:00")
    central.clock.fixed = BERLIN_9 - dt.timedelta(hours=1)
    found = await central.hub.look_up_booking(code)
    assert (found.status, found.department, found.slot_start.isoformat(), found.slot_end.isoformat()) == (
        "booking_other_time", "ordnungsamt", "2026-12-07T09:00:00+01:00", "2026-12-07T09:15:00+01:00")
    central.clock.fixed = BERLIN_9
    assert (await central.hub.look_up_booking(code)).status == "now"
    assert (await central.hub.look_up_booking(code)).status == "now"  # looking does not use it
    unknown = await central.hub.look_up_booking("7K3M9QX2")
    assert (unknown.status, unknown.department, unknown.slot_start) == ("booking_unknown", None, None)


async def test_a_booking_whose_visit_ended_before_pick_up_can_be_used_again(central):
    central.clock.fixed = BERLIN_9
    code = await book(central)
    clerk = await central.clerk()
    kiosk = await central.new_kiosk("Bibliothek")
    await kiosk.send(type="visit.request", department="ordnungsamt", booking=code)
    queued = await kiosk.recv("visit.queued")
    await kiosk.send(type="visit.cancel", visit_id=queued["visit_id"])  # pressed by mistake
    assert (await kiosk.recv("visit.ended"))["reason"] == "cancelled"
    await asyncio.gather(*central.hub._booking_writes)  # the release, written in the background
    assert (await central.db.bookings.daily(MONDAY))[0].kept == 0

    await kiosk.send(type="visit.request", department="ordnungsamt", booking=code)
    queued = await kiosk.recv("visit.queued")
    assert queued["position"] == 1
    await clerk.send(type="visit.pickup", visit_id=queued["visit_id"])
    await kiosk.recv("call.start")
    await clerk.send(type="visit.hangup", visit_id=queued["visit_id"])
    await kiosk.recv("visit.ended")
    await asyncio.gather(*central.hub._booking_writes)
    other = await central.new_kiosk("Rathaus")
    await other.send(type="visit.request", department="ordnungsamt", booking=code)
    assert (await other.recv("visit.refused"))["reason"] == "booking_unknown"  # used: the citizen was served
    assert (await central.db.bookings.daily(MONDAY))[0].kept == 1


async def test_a_booked_visit_from_home_restored_after_a_restart_and_cancelled_frees_its_booking(central):
    from tests.central.home_client import home

    central.clock.fixed = BERLIN_9
    code = await book(central)
    browser = await home(central)
    await browser.send(type="visit.request", department="ordnungsamt", booking=code)
    queued = await browser.recv("visit.queued")
    async with restarted(central) as again:
        page = await home(again)
        await page.send(type="visit.resume", visit_id=queued["visit_id"], resume_token=queued["resume_token"])
        await page.recv("visit.resumed")
        assert again.hub.rooms.get(queued["visit_id"]).slot_start == BERLIN_9.timestamp()
        await page.send(type="visit.cancel", visit_id=queued["visit_id"])  # gone before anyone picked it up
        assert (await page.recv("visit.ended"))["reason"] == "cancelled"
        await asyncio.gather(*again.hub._booking_writes)  # the release, written in the background
        assert (await again.db.bookings.daily(MONDAY))[0].kept == 0
        await page.send(type="visit.request", department="ordnungsamt", booking=code)
        assert (await page.recv("visit.queued"))["position"] == 1  # the same code works again
