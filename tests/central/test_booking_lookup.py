"""A kiosk asks which appointment a code is (booking.lookup), before its citizen queues with it."""
from __future__ import annotations

import datetime as dt

from protocol import fleet as f
from tests.central.test_booked_visits import BERLIN_9, book


async def test_a_code_at_its_time_names_the_department_and_slot_and_uses_nothing(central):
    central.clock.fixed = BERLIN_9 + dt.timedelta(minutes=2)
    code = await book(central)
    kiosk = await central.kiosk()
    await kiosk.send(type="booking.lookup", booking=code)
    found = await kiosk.recv("booking.found")
    assert found == {"v": 1, "type": "booking.found", "booking": code, "status": "now", "department": "ordnungsamt",
                     "slot_start": "2026-12-07T09:00:00+01:00", "slot_end": "2026-12-07T09:15:00+01:00"}
    assert central.hub.rooms.all() == []  # only asked: nobody queued, the booking not used
    await kiosk.send(type="visit.request", department="ordnungsamt", booking=code)
    assert (await kiosk.recv("visit.queued"))["position"] == 1
    await kiosk.send(type="booking.lookup", booking=code)
    assert (await kiosk.recv("booking.found"))["status"] == "booking_unknown"  # used now


async def test_a_code_for_another_time_says_when(central):
    code = await book(central, at="09:00")
    central.clock.fixed = BERLIN_9 - dt.timedelta(days=3)
    kiosk = await central.kiosk()
    await kiosk.send(type="booking.lookup", booking=code)
    found = await kiosk.recv("booking.found")
    assert (found["status"], found["department"], found["slot_start"]) == (
        "booking_other_time", "ordnungsamt", "2026-12-07T09:00:00+01:00")


async def test_unknown_cancelled_and_not_offered_codes_tell_nothing(central):
    central.clock.fixed = BERLIN_9
    code, cancelled = await book(central), await book(central)
    assert await central.db.bookings.cancel(cancelled)
    kiosk_id, token = await central.db.create_kiosk("Bibliothek")
    kiosk = await central.kiosk(token)
    for booking in ("7K3M9QX2", cancelled):
        await kiosk.send(type="booking.lookup", booking=booking)
        assert await kiosk.recv("booking.found") == {"v": 1, "type": "booking.found", "booking": booking,
                                                    "status": "booking_unknown", "department": None,
                                                    "slot_start": None, "slot_end": None}
    # This kiosk offers only the Bürgerbüro: an Ordnungsamt booking is none of its business.
    central.hub.send_settings(kiosk_id, f.KioskSettings(
        version=2, location="Bibliothek", departments=["buergerbuero"], default_language="de", languages=["de"],
        volume_pct=70, mic_gain_db=0, brightness_pct=80, screen_off_outside_hours=False))
    await kiosk.recv("kiosk.settings")
    await kiosk.send(type="booking.lookup", booking=code)
    assert (await kiosk.recv("booking.found"))["status"] == "booking_unknown"


async def test_guessing_codes_is_slowed_down(central):
    central.clock.fixed = BERLIN_9
    kiosk = await central.kiosk()
    for _ in range(5):
        await kiosk.send(type="booking.lookup", booking="7K3M9QX2")
        await kiosk.recv("booking.found")
    await kiosk.send(type="booking.lookup", booking="7K3M9QX3")
    error = await kiosk.recv("error")
    assert (error["code"], error["ref"], error["retry_after_s"]) == ("rate_limited", "booking.lookup", 10)
