"""The console in real Chromium shows today's booked slots of the clerk's departments, and a booked visit at the
head of its department's waiting list, marked with its appointment's time."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from central.bookings.slots import Slot, forget_after
from tests.e2e.clerk_steps import login

BERLIN = ZoneInfo("Europe/Berlin")


async def test_console_shows_todays_booked_slots_and_the_booked_visit_first(central, browser):
    # Real time (the console compares slot starts with its own clock): a slot that began a minute ago.
    start = dt.datetime.now(BERLIN).replace(second=0, microsecond=0) - dt.timedelta(minutes=1)
    slot = Slot(start, start + dt.timedelta(minutes=15))
    hours = central.hub.departments["buergerbuero"].hours
    used, _ = [await central.db.bookings.create("buergerbuero", slot, 2, forget_after(hours, slot)) for _ in range(2)]

    walk_in = await central.new_kiosk("Bibliothek")
    await walk_in.send(type="visit.request", department="buergerbuero")
    await walk_in.recv("visit.queued")
    booked = await central.new_kiosk("Rathaus Nord")
    await booked.send(type="visit.request", department="buergerbuero", booking=used)
    assert (await booked.recv("visit.queued"))["position"] == 1

    context = await browser.new_context(locale="en-GB", timezone_id="Europe/Berlin",
                                        extra_http_headers={"Accept-Language": "en"})
    page = await context.new_page()
    try:
        await login(page, central)
        item = page.locator("[data-testid=booked-slot]")
        await item.wait_for()
        assert await item.count() == 1
        text = await item.inner_text()
        assert f"{start:%H:%M}–{slot.end:%H:%M}" in text and "Bürgerbüro" in text
        assert "2 booked, 1 checked in" in text and await item.get_attribute("data-state") == "now"
        assert await page.locator("[data-testid=bookings] h2").inner_text() == "Today's appointments"

        rows = page.locator("section.department:has(h2:text('Bürgerbüro')) [data-testid=visit-row]")
        await rows.nth(1).wait_for()
        first = rows.nth(0)
        assert await first.locator(".visit-where").inner_text() == "Rathaus Nord"
        assert await first.locator("[data-testid=visit-booked]").inner_text() == f"Appointment {start:%H:%M}"
        assert not await rows.nth(1).locator("[data-testid=visit-booked]").is_visible()
    finally:
        await context.close()
