"""A citizen books an appointment on the public page in real Chromium and, at the time, joins from the link.

The booking: office -> the first free time -> a code, its link, a QR code that reads back as that link. At the
time the booking's page leads to the visit page with ?booking=CODE; a walk-in waits already; the booked
citizen goes through the device check into the waiting room at its head, the clerk (real Chromium) picks up
the next visit, and both see and hear each other. (The kiosk's way in, with the QR code, is tested in
tests/e2e with the kiosk's fake camera.)
"""
from __future__ import annotations

import base64
import datetime as dt
import re
from zoneinfo import ZoneInfo

import numpy as np
import zxingcpp

from tests.browser import BASE64_JS
from tests.e2e.fake_central import console_errors
from tests.e2e.test_home_visit import CLERK_PC, HOME_PC, clerk_console, moving_picture_and_sound

BERLIN = ZoneInfo("Europe/Berlin")  # the demo data's time zone

# The QR code as the page draws it, rasterised in the page (no image library needed): grey values, base64.
QR_PIXELS_JS = """async () => {
""" + BASE64_JS + """
  const svg = document.querySelector('figure.qr svg');
  const xml = new XMLSerializer().serializeToString(svg);
  const img = new Image();
  img.src = 'data:image/svg+xml;base64,' + btoa(xml);
  await img.decode();
  const c = document.createElement('canvas'); c.width = img.width * 2; c.height = img.height * 2;
  const g = c.getContext('2d'); g.fillStyle = '#fff'; g.fillRect(0, 0, c.width, c.height);
  g.drawImage(img, 0, 0, c.width, c.height);
  const d = g.getImageData(0, 0, c.width, c.height).data, y = new Uint8Array(c.width * c.height);
  for (let i = 0; i < y.length; i++) y[i] = d[4 * i + 1];
  return {w: c.width, h: c.height, grey: base64(y)};
}"""


async def test_a_citizen_books_on_the_page_and_joins_from_the_link(central, browser):
    citizen = await browser.new_context(locale="de-DE", timezone_id="Europe/Berlin",
                                        permissions=["camera", "microphone"], viewport={"width": 390, "height": 844})
    page = await citizen.new_page()
    errors = console_errors(page)
    clerk_context = None
    try:
        # -- booking, as a citizen does it on the page --------------------------------------------------
        await page.goto(central.url + "/booking?lang=de")
        await page.get_by_role("link", name="Termin bei Standesamt buchen").click()
        first = page.locator("input[name=start]").first
        start = dt.datetime.strptime(await first.get_attribute("value"), "%Y-%m-%dT%H:%M").replace(tzinfo=BERLIN)
        assert await first.is_checked()  # the earliest free time is preselected
        await page.get_by_role("button", name="Diese Zeit buchen").click()
        await page.wait_for_load_state()
        assert re.search(r"/booking/[0-9A-Z]{8}\?done=new$", page.url), (page.url, await page.content())
        code = (await page.get_by_test_id("booking-code").inner_text()).replace("-", "")
        link = await page.get_by_test_id("booking-link").get_attribute("href")
        assert link == f"{central.url}/booking/{code}"
        qr = await page.evaluate(QR_PIXELS_JS)
        pixels = np.frombuffer(base64.b64decode(qr["grey"]), np.uint8).reshape(qr["h"], qr["w"])
        assert [r.text for r in zxingcpp.read_barcodes(pixels)] == [link]  # what a kiosk's camera reads
        if start - dt.datetime.now(BERLIN) > dt.timedelta(minutes=11):  # the next slot may begin within ten
            assert await page.get_by_test_id("join").count() == 0  # too early

        # -- at the time: a walk-in waits already; the link leads into the visit ---------------------------
        central.clock.fixed = start.astimezone(dt.UTC) + dt.timedelta(minutes=1)
        walk_in = await central.new_kiosk("Bibliothek")
        await walk_in.send(type="visit.request", department="standesamt")
        assert (await walk_in.recv("visit.queued"))["position"] == 1
        clerk_context, console = await clerk_console(browser, central)

        await page.goto(link)
        await page.get_by_test_id("join").click()
        await page.wait_for_url(f"**/visit/standesamt?booking={code}")
        await page.click("[data-testid=notice-ok]")
        await page.locator("[data-testid=start]:enabled").wait_for()  # camera and microphone work
        await page.click("[data-testid=start]")
        await page.locator("[data-testid=waiting]").wait_for()
        booked = next(v for v in central.hub.rooms.all() if v.origin == "online")
        assert booked.slot_start == start.timestamp()
        assert [v.id for v in central.hub.rooms.waiting("standesamt")][0] == booked.id  # ahead of the walk-in
        while (told := await walk_in.recv("visit.position"))["position"] == 1:
            pass  # the clerk's console coming online changed the walk-in's expected wait first
        assert told["position"] == 2

        section = console.locator("section.department:has(h2:text('Standesamt'))")
        await section.locator("[data-testid=visit-row]").nth(1).wait_for()
        await section.get_by_test_id("pickup-next").click()
        await page.locator("[data-testid=call]").wait_for()  # the booked citizen, not the walk-in
        await moving_picture_and_sound(console, CLERK_PC, "#remote-video")  # the citizen, at the clerk
        await moving_picture_and_sound(page, HOME_PC, "#remote-video")      # the clerk, at home
        assert [v.kiosk_location for v in central.hub.rooms.waiting("standesamt")] == ["Bibliothek"]
        assert [(d.booked, d.kept) for d in await central.db.bookings.daily(start.date())] == [(1, 1)]

        # The link once more: used.
        await page.goto(link)
        assert await page.get_by_test_id("booking").get_attribute("data-phase") == "used"
        assert errors == [], errors
    finally:
        await citizen.close()
        if clerk_context is not None:
            await clerk_context.close()
