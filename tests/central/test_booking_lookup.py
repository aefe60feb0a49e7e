"""A kiosk asks which appointment a code is (booking.lookup), before its citizen queues with it."""
from __future__ import annotations

import datetime as dt

from central.bookings.slots import SlotSettings
from protocol import fleet as f
from tests.central.test_admin import department_form, site  # noqa: F401 - the fixture
from tests.central.test_admin_slots import SLOTS
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



async def test_kiosks_are_told_which_offices_take_appointments(central):
    kiosk = await central.kiosk()  # (its first welcome is read by the helper)
    await central.db.bookings.save_settings("ordnungsamt", SlotSettings(slot_minutes=20))
    await central.hub.refresh_bookable()  # as at start, and when the admin saves a department
    central.hub.resend_departments()
    welcome = await kiosk.recv("welcome")
    bookable = {d["slug"] for d in welcome["departments"] if d["bookable"]}
    assert "ordnungsamt" in bookable and bookable == set(await central.db.bookings.settings())
    assert {d["slug"] for d in welcome["departments"]} - bookable  # the others: no "I have an appointment"


async def test_the_admins_slot_settings_decide_which_offices_kiosks_offer_appointments_for(site):  # noqa: F811
    hub = site.client.app["hub"]
    assert (await site.post("/admin/departments/new", department_form() | SLOTS)).status == 303
    assert [d.bookable for d in hub.department_info() if d.slug == "buergeramt"] == [True]
    off = department_form() | SLOTS | {"booking_on": ""}
    assert (await site.post("/admin/departments/buergeramt/edit", off)).status == 303
    assert [d.bookable for d in hub.department_info() if d.slug == "buergeramt"] == [False]
