"""The whole appliance process with fake hardware: a citizen holds their booking's QR code up to the (fake)
camera, the unit reads it, central (played by the test) says which appointment it is, and the visit is
requested with the code. Only the code leaves the unit."""
from __future__ import annotations

import pytest

from appliance.config import ApplianceConfig
from appliance.controller.view import BookingScreen, Screen
from appliance.hardware.fake.held_code import Look
from appliance.service.main import start
from tests.appliance.fake_central import WELCOME, fake_central
from tests.polling import view_until

pytest.importorskip("zxingcpp", reason="the QR decoder zxing-cpp is not installed (pip install zxing-cpp==2.3.0)")

LINK = "https://buergerbuero.musterdorf.de/booking/7K3M9QX2"
WELCOME_BOOKABLE = {**WELCOME, "departments": [{**WELCOME["departments"][0], "bookable": True}]}
SLOT = {"slot_start": "2026-12-07T10:30:00+01:00", "slot_end": "2026-12-07T10:45:00+01:00"}


@pytest.fixture
async def central():
    async with fake_central() as c:
        yield c


@pytest.fixture
async def unit(central, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything the appliance wrote by accident would land here
    config = ApplianceConfig(central_url=central.url, token="k" * 32, hardware={"backend": "fake"}, kiosk_port=0,
                             data_dir=tmp_path / "data")
    appliance = await start(config)
    yield appliance
    await appliance.close()


async def test_a_qr_code_held_up_becomes_a_booked_visit_request(central, unit, tmp_path):
    link = await central.connection(1)
    await link.send(**WELCOME_BOOKABLE)
    await view_until(unit, lambda v: v.online and v.departments[0].bookable)
    camera = unit.hardware.camera
    unit.controller.post("booking")  # the page's "I have an appointment"
    await view_until(unit, lambda v: v.screen is Screen.BOOKING and v.booking.step == "scanning")
    assert unit.self_view.mode == "raw"  # the citizen sees what the camera sees, to aim
    camera.held.hold(LINK, Look(angle=-20, tilt=0.2, noise=6))

    lookup = await link.recv("booking.lookup")
    assert lookup == {"v": 1, "type": "booking.lookup", "booking": "7K3M9QX2"}  # the code alone, not the link
    view = await view_until(unit, lambda v: v.booking and v.booking.step == "checking")
    assert camera._track.readyState == "ended" and unit.self_view.mode is None  # camera off once read
    await link.send(type="booking.found", booking="7K3M9QX2", status="now", department="buergerbuero", **SLOT)
    view = await view_until(unit, lambda v: v.booking and v.booking.step == "found")
    assert view.booking == BookingScreen(step="found", code="7K3M9QX2", department="buergerbuero", **SLOT)

    await unit.hardware.button.press()  # the call button confirms
    request = await link.recv("visit.request")
    assert request == {"v": 1, "type": "visit.request", "department": "buergerbuero", "language": "de",
                       "booking": "7K3M9QX2"}
    await link.send(type="visit.queued", visit_id="v" * 24, resume_token="t" * 24, department="buergerbuero",
                    position=1, expected_wait_s=0)
    view = await view_until(unit, lambda v: v.screen is Screen.WAITING and v.position == 1)
    assert view.booking is None
    # Nothing of the picture, the code or the visit was written anywhere.
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "7K3M9QX2" in p.read_bytes().decode("latin-1")]
    assert written == []
    kinds = [msg["type"] for msg in link.received]
    assert kinds.count("booking.lookup") == 1 and kinds.count("visit.request") == 1


async def test_nothing_read_then_the_keypad_then_another_time(central, unit):
    link = await central.connection(1)
    await link.send(**WELCOME_BOOKABLE)
    await view_until(unit, lambda v: v.online and v.departments[0].bookable)
    unit.controller.post("booking")
    unit.hardware.camera.held.hold("WIFI:S:Rathaus-Gast;T:WPA;P:geheim;;")  # a QR code, but not a booking's
    await view_until(unit, lambda v: v.booking and v.booking.hint == "not_a_booking")
    unit.controller.post("booking_type")
    await view_until(unit, lambda v: v.booking and v.booking.step == "typing")
    assert unit.hardware.camera._track.readyState == "ended"
    unit.controller.post("booking_code", "7k3m-9qx2")
    await link.recv("booking.lookup")
    await link.send(type="booking.found", booking="7K3M9QX2", status="booking_other_time", department="buergerbuero",
                    **SLOT)
    view = await view_until(unit, lambda v: v.booking and v.booking.step == "problem")
    assert (view.booking.problem, view.booking.slot_start) == ("booking_other_time", SLOT["slot_start"])
    await unit.hardware.button.long_press()
    await view_until(unit, lambda v: v.screen is Screen.IDLE and v.booking is None)
