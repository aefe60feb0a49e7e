"""A booked appointment joined at the kiosk, end to end: real central with a booking, the appliance with fake
hardware whose camera is shown the booking's QR code, and the kiosk page in a real Chromium. The booked
citizen goes ahead of a walk-in who came first, and the clerk picks the booked visit up first."""
from __future__ import annotations

import datetime as dt
import io

import av
import numpy as np
import pytest

from appliance.config import ApplianceConfig
from appliance.controller.machine import Timeouts
from appliance.controller.view import Screen
from appliance.hardware.fake.held_code import Look
from appliance.service.main import start
from tests.browser import poll
from tests.central.test_booked_visits import BERLIN_9
from tests.central.test_booked_visits import book as book_slot
from tests.polling import view_until

pytest.importorskip("zxingcpp", reason="the QR decoder zxing-cpp is not installed (pip install zxing-cpp==2.3.0)")


async def book(central, department: str, at: str) -> str:
    """A booking; the office's slot settings saved as the admin's form does, which tells the kiosks."""
    code = await book_slot(central, department, at=at)
    await central.hub.refresh_bookable()
    central.hub.resend_departments()
    return code


@pytest.fixture
async def unit(central, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything the appliance wrote by accident would land here
    config = ApplianceConfig(central_url=central.url, token=central.credentials["kiosk_token"],
                             hardware={"backend": "fake"}, kiosk_port=0, data_dir=tmp_path / "data")
    appliance = await start(config, timeouts=Timeouts(ended_s=1.0))
    yield appliance
    await appliance.close()


async def kiosk_page(browser, unit):
    context = await browser.new_context(viewport={"width": 1280, "height": 720}, timezone_id="Europe/Berlin")
    page = await context.new_page()
    await page.goto(unit.page_url)
    await page.locator("#kiosk[data-screen=idle]").wait_for()
    return context, page


async def phone_screen(browser, url: str) -> np.ndarray:
    """What a phone shows of the booking's page around its QR code, held close to the camera: grey."""
    context = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=3,
                                        timezone_id="Europe/Berlin")  # a phone's screen: three pixels a point
    try:
        page = await context.new_page()
        await page.goto(url)
        png = await page.locator("figure.qr").screenshot()
    finally:
        await context.close()
    with av.open(io.BytesIO(png), format="png_pipe") as picture:
        return next(picture.decode(video=0)).to_ndarray(format="gray")


async def test_a_booked_citizen_shows_the_qr_code_and_goes_ahead_of_a_walk_in(central, browser, unit):
    central.clock.fixed = BERLIN_9 + dt.timedelta(minutes=2)  # Monday 09:02 in Berlin: the 09:00 slot
    code = await book(central, "ordnungsamt", at="09:00")
    walk_in = await central.new_kiosk("Bibliothek")
    await walk_in.send(type="visit.request", department="ordnungsamt")
    assert (await walk_in.recv("visit.queued"))["position"] == 1
    clerk = await central.clerk()
    await view_until(unit, lambda v: v.online and any(d.slug == "ordnungsamt" and d.open for d in v.departments))
    context, kiosk = await kiosk_page(browser, unit)
    try:
        await kiosk.get_by_role("button", name="Ich habe einen Termin").click()
        await kiosk.locator("#booking[data-step=scanning]").wait_for()
        # The camera's picture is on the screen, so the citizen can aim.
        await poll(lambda: kiosk.evaluate("window.amtsklingel.selfView.shown"), lambda shown: shown > 2)
        await kiosk.get_by_text("Halten Sie den QR-Code Ihres Termins vor die Kamera.").wait_for()

        # The citizen holds up their phone showing the booking's page (central's own, with its QR code).
        unit.hardware.camera.held.hold_image(await phone_screen(browser, f"{central.url}/booking/{code}"),
                                             Look(size=0.75, angle=8, tilt=0.1, contrast=0.8, noise=5))
        found = kiosk.locator("#booking[data-step=found]")
        await found.wait_for()
        text = await found.inner_text()
        assert "Ihr Termin" in text and "Ordnungsamt" in text and "09:00" in text and "09:15" in text
        assert f"{code[:4]}-{code[4:]}" in text
        assert unit.hardware.camera._track.readyState == "ended"  # the camera is off again
        assert central.hub.rooms.waiting("ordnungsamt")[0].slot_start is None  # only looked up so far

        await kiosk.get_by_role("button", name="Videogespräch beginnen").click()
        await kiosk.locator("#kiosk[data-screen=waiting]").wait_for()
        view = await view_until(unit, lambda v: v.position is not None)
        assert view.position == 1 and view.selected == "ordnungsamt"
        await kiosk.get_by_text("Sie sind als Nächstes dran.").wait_for()
        # The walk-in came first and now waits longer (an update may repeat its old place first).
        while (await walk_in.recv("visit.position"))["position"] != 2:
            pass
        assert [v.id for v in central.hub.rooms.waiting("ordnungsamt")][0] == unit.controller._visit.visit_id

        # The clerk takes the next visit of the Ordnungsamt: the booked one.
        booked_id = unit.controller._visit.visit_id
        await clerk.send(type="visit.pickup", department="ordnungsamt")
        assigned = await clerk.recv("call.assigned")
        assert assigned["visit"]["visit_id"] == booked_id
        assert assigned["visit"]["slot_start"] == BERLIN_9.timestamp()
        await kiosk.locator("#kiosk[data-screen=in_call]").wait_for()
        await clerk.send(type="visit.hangup", visit_id=booked_id)
        await view_until(unit, lambda v: v.screen in (Screen.ENDED, Screen.IDLE))
        # The booking is used: shown again, it is unknown.
        assert (await central.hub.look_up_booking(code)).status == "booking_unknown"
    finally:
        await context.close()


async def test_a_code_typed_for_another_day_says_when_the_appointment_is(central, browser, unit):
    central.clock.fixed = BERLIN_9 - dt.timedelta(days=3)  # Friday before
    code = await book(central, "ordnungsamt", at="09:00")
    await view_until(unit, lambda v: v.online)
    context, kiosk = await kiosk_page(browser, unit)
    try:
        await kiosk.get_by_role("button", name="Türkçe").click()
        await kiosk.get_by_role("button", name="Randevum var").click()
        await kiosk.get_by_role("button", name="Kodu yaz").click()
        await kiosk.locator("#booking[data-step=typing]").wait_for()
        for key in code.lower()[:4] + "-" + code.lower()[4:]:  # as printed, in small letters, with its dash
            if key != "-":
                await kiosk.click(f".key[data-key='{key.upper()}']")
        await kiosk.click(".key[data-key='ok']")
        problem = kiosk.locator("#booking[data-step=problem]")
        await problem.wait_for()
        text = await problem.inner_text()
        assert "Randevunuz başka bir zamanda." in text and "Ordnungsamt" in text and "09:00" in text
        assert "Pazartesi" in text  # Monday, in Turkish
        assert central.hub.rooms.all() == []
    finally:
        await context.close()
