"""GET /console/bookings: today's booked slots, only of the clerk's own departments, only counts."""
from __future__ import annotations

import datetime as dt

from central import passwords
from central.bookings.slots import SlotSettings, forget_after, slots_of_day

MONDAY_9 = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)  # 09:00 in Berlin


async def test_a_clerk_sees_counts_of_todays_slots_of_their_departments_only(central):
    central.clock.fixed = MONDAY_9
    for slug, day in (("ordnungsamt", dt.date(2026, 12, 7)), ("ordnungsamt", dt.date(2026, 12, 8)),
                      ("buergerbuero", dt.date(2026, 12, 7))):
        hours = central.hub.departments[slug].hours
        slot = slots_of_day(hours, SlotSettings(30), day)[2]
        code = await central.db.bookings.create(slug, slot, 3, forget_after(hours, slot))
    await central.db.bookings.check_in(code, MONDAY_9.timestamp())
    await central.db.create_staff("ordnung", "Herr Ordnung", passwords.hash_password("correct horse 1"), "clerk",
                                  ["ordnungsamt"])
    session = await central.login("ordnung", "correct horse 1")
    async with session.get(central.url + "/console/bookings") as r:
        body = await r.json()
    assert body["server_time"] == MONDAY_9.timestamp()
    assert body["slots"] == [{"department": "ordnungsamt", "name": "Ordnungsamt", "time_zone": "Europe/Berlin",
                              "slot_start": int(dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC).timestamp()),
                              "slot_end": int(dt.datetime(2026, 12, 7, 8, 30, tzinfo=dt.UTC).timestamp()),
                              "booked": 1, "checked_in": 0}]  # not Tuesday's, not the Bürgerbüro's
    everyone = await central.login(central.credentials["clerk_user"], central.credentials["clerk_password"])
    async with everyone.get(central.url + "/console/bookings") as r:
        assert [(s["department"], s["checked_in"]) for s in (await r.json())["slots"]] == [
            ("buergerbuero", 1), ("ordnungsamt", 0)]
    async with central.session.get(central.url + "/console/bookings", allow_redirects=False) as r:
        assert r.status == 302 and r.headers["Location"].startswith("/login")
