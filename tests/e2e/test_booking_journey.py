"""A citizen books an appointment on the public page in real Chromium and, at the time, joins from the link.

The booking: office -> the first free time -> a code, its link, a QR code that reads back as that link, and
the page's "join" link at the time. The join itself is at the protocol level here: a citizen's browser at
home is a WebSocket client of /ws/visit with an aiortc peer (test pattern, tone) sending the booking's code,
as the visit page does; a walk-in waits already; the clerk in real Chromium picks up the next visit, which is
the booked citizen, and sees their moving picture.
"""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import re
from zoneinfo import ZoneInfo

import numpy as np
import zxingcpp

from appliance.call.peer import CallPeer
from appliance.hardware.fake.camera import TestPatternTrack
from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack
from protocol import messages as m
from tests.browser import BASE64_JS, poll
from tests.central.home_client import home
from tests.e2e.fake_central import console_errors
from tests.e2e.test_clerk_call import INBOUND_STATS_JS, login

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


class HomeCitizen:
    """A browser at home, reduced to what it does on the wire: request with the code, then offer a call."""

    def __init__(self, peer) -> None:
        self.ws = peer
        self.call = CallPeer([], [TestPatternTrack(320, 240), SyntheticMicrophoneTrack()])
        self.states: list[str] = []
        self.call.pc.on("connectionstatechange", lambda: self.states.append(self.call.pc.connectionState))
        self.task: asyncio.Task | None = None

    def start(self, visit_id: str) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(visit_id))

    async def _run(self, visit_id: str) -> None:
        """On call.start: offer; then take the clerk's answer and trickled candidates."""
        while True:
            frame = json.loads((await self.ws.ws.receive()).data)
            self.ws.inbox.append(frame)
            if frame["type"] == "call.start":
                await self.ws.send(type="rtc.offer", visit_id=visit_id, sdp=await self.call.offer())
            elif frame["type"] == "rtc.answer":
                await self.call.accept_answer(frame["sdp"])
            elif frame["type"] == "rtc.candidate":
                await self.call.add_candidate(m.Candidate(**frame["candidate"]))

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
        await self.call.close()


async def test_a_citizen_books_on_the_page_and_joins_from_the_link(central, browser):
    citizen = await browser.new_context(locale="de-DE", timezone_id="Europe/Berlin")
    page = await citizen.new_page()
    errors = console_errors(page)
    clerk_context = await browser.new_context(permissions=["camera", "microphone"], locale="en-GB",
                                              extra_http_headers={"Accept-Language": "en"})
    console = await clerk_context.new_page()
    at_home = None
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

        # -- at the time: the page leads into the visit --------------------------------------------------
        central.clock.fixed = start.astimezone(dt.UTC) + dt.timedelta(minutes=1)
        await page.goto(link)
        join = page.get_by_test_id("join")
        assert await join.get_attribute("href") == f"/visit/standesamt?booking={code}"

        walk_in = await central.new_kiosk("Bibliothek")
        await walk_in.send(type="visit.request", department="standesamt")
        assert (await walk_in.recv("visit.queued"))["position"] == 1

        await login(console, central)
        await console.locator("[data-testid=connection-state][data-state=connected]").wait_for()

        # What the visit page sends with ?booking=CODE (protocol level; see the module's docstring).
        at_home = HomeCitizen(await home(central))
        await at_home.ws.send(type="visit.request", department="standesamt", language="de", booking=code)
        queued = await at_home.ws.recv("visit.queued")
        assert queued["position"] == 1  # ahead of the walk-in who came first
        while (told := await walk_in.recv("visit.position"))["position"] == 1:
            pass  # the clerk's console coming online changed the walk-in's expected wait first
        assert told["position"] == 2
        at_home.start(queued["visit_id"])

        section = console.locator("section.department:has(h2:text('Standesamt'))")
        await section.locator("[data-testid=visit-row]").nth(1).wait_for()
        await section.get_by_test_id("pickup-next").click()
        await poll(lambda: console.evaluate(INBOUND_STATS_JS),
                   lambda s: s and s["video"] and s["video"]["framesDecoded"] > 10, seconds=30)
        assert "connected" in at_home.states
        assert central.hub.rooms.get(queued["visit_id"]).clerk_id is not None  # the booked one, not the walk-in
        assert [v.kiosk_location for v in central.hub.rooms.waiting("standesamt")] == ["Bibliothek"]
        day = start.date()
        assert [(d.booked, d.kept) for d in await central.db.bookings.daily(day)] == [(1, 1)]

        # The link once more: used.
        await page.goto(link)
        assert await page.get_by_test_id("booking").get_attribute("data-phase") == "used"
        assert errors == [], errors
    finally:
        if at_home is not None:
            await at_home.close()
        await citizen.close()
        await clerk_context.close()
