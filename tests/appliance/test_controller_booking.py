"""The appointment screen in the kiosk's state machine: the QR code read or the code typed, central's answer
shown, the booked visit requested; central and the camera's scanner played by the test."""
from __future__ import annotations

import pytest

from appliance.controller.machine import Timeouts
from appliance.controller.view import APPOINTMENT, BookingScreen, Screen
from protocol import messages as m
from protocol.booking_lookup import BookingLookup
from tests.appliance.controller_rig import TOKEN, VISIT, Rig, wait_for

CODE = "7K3M9QX2"
SLOT = {"slot_start": "2026-12-07T10:30:00+01:00", "slot_end": "2026-12-07T10:45:00+01:00"}


class FakeScanner:
    """Stands in for appliance.booking.scanner.QrScanner: the test says what the camera reads."""

    def __init__(self, controller) -> None:
        self.c, self.running, self.starts = controller, False, 0
        self.fail_with: str | None = None

    def start(self) -> None:
        self.starts += 1
        if self.fail_with:
            self.c.post("qr_fault", self.fail_with)
            return
        self.running = True

    def stop(self) -> None:
        self.running = False

    def reads(self, code: str) -> None:
        assert self.running, "the camera is off: nothing can be read"
        self.running = False  # the scanner stops itself with a code
        self.c.post("qr_code", code)


@pytest.fixture
async def rig():
    r = Rig(Timeouts(choosing_s=5, consent_s=5, ended_s=0.2, notice_s=0.2, request_s=0.3, media_s=60,
                     booking_hint_s=0.2, booking_s=0.6))
    r.scanner = r.c.scanner = FakeScanner(r.c)
    yield r
    r.task.cancel()


async def online(rig):
    """Connected; the Standesamt takes appointments, the others do not."""
    welcome = m.Welcome(type="welcome", kiosk_location="Foyer", ice_servers=[], departments=[
        m.DepartmentInfo(slug="buergerbuero", name="Bürgerbüro", open=True),
        m.DepartmentInfo(slug="standesamt", name="Standesamt", open=True, bookable=True),
        m.DepartmentInfo(slug="ordnungsamt", name="Ordnungsamt", open=False)])
    return await rig.do("connected", welcome)


async def view_until(rig, predicate):
    await wait_for(rig, predicate)
    return rig.c.view


async def settle(rig):
    await rig.c.settle()
    return rig.c.view


async def to_found(rig) -> None:
    await online(rig)
    view = await rig.do("booking")
    assert view.screen is Screen.BOOKING and view.booking == BookingScreen(step="scanning") and rig.scanner.running
    rig.scanner.reads(CODE)
    view = await settle(rig)
    assert view.booking == BookingScreen(step="checking", code=CODE) and not rig.scanner.running
    assert rig.sent[-1] == BookingLookup(type="booking.lookup", booking=CODE)
    view = await rig.central(type="booking.found", booking=CODE, status="now", department="standesamt", **SLOT)
    assert view.booking == BookingScreen(step="found", code=CODE, department="standesamt", **SLOT)


async def test_a_code_held_up_is_looked_up_shown_and_then_requested_with_the_booking(rig):
    await rig.do("language", "uk")
    await to_found(rig)
    assert rig.leds[-1] == "idle"
    view = await rig.do("press")  # the button confirms, as on the consent screen
    assert view.screen is Screen.WAITING and view.selected == "standesamt" and view.booking is None
    assert rig.sent[-1] == m.VisitRequest(type="visit.request", department="standesamt", language="uk", booking=CODE)
    view = await rig.central(type="visit.queued", visit_id=VISIT, resume_token=TOKEN, department="standesamt",
                             position=1, expected_wait_s=0)
    assert view.screen is Screen.WAITING and view.position == 1


async def test_the_booked_request_is_asked_again_after_a_reconnect(rig):
    await to_found(rig)
    await rig.do("confirm")
    await rig.do("disconnected")
    await online(rig)
    assert rig.sent[-1] == m.VisitRequest(type="visit.request", department="standesamt", language="de", booking=CODE)


async def test_another_time_and_unknown_codes_say_so_and_the_button_tries_again(rig):
    await online(rig)
    await rig.do("booking")
    rig.scanner.reads(CODE)
    await settle(rig)
    view = await rig.central(type="booking.found", booking=CODE, status="booking_other_time",
                             department="standesamt", **SLOT)
    assert view.booking == BookingScreen(step="problem", problem="booking_other_time", code=CODE,
                                         department="standesamt", **SLOT)
    assert (await rig.do("press")).screen is Screen.IDLE  # nothing to do here now: back to the start
    await rig.do("booking")
    rig.scanner.reads("ABCD2345")
    await settle(rig)
    view = await rig.central(type="booking.found", booking="ABCD2345", status="booking_unknown")
    assert view.booking == BookingScreen(step="problem", problem="booking_unknown", code="ABCD2345")
    view = await rig.do("press")  # misread or mistyped? look again
    assert view.booking == BookingScreen(step="scanning") and rig.scanner.running


async def test_nothing_read_for_a_while_offers_the_keypad_which_reads_what_people_type(rig):
    await online(rig)
    await rig.do("booking")
    view = await view_until(rig, lambda v: v.booking and v.booking.hint == "no_code_seen")
    assert view.booking.step == "scanning" and rig.scanner.running  # still looking meanwhile
    view = await rig.do("booking_type")
    assert view.booking == BookingScreen(step="typing") and not rig.scanner.running
    view = await rig.do("booking_code", "7K3M-9QX")
    assert view.booking == BookingScreen(step="typing", hint="invalid_code")
    assert not [s for s in rig.sent if isinstance(s, BookingLookup)]  # nothing asked with a code that is none
    view = await rig.do("booking_code", "7k3m 9qx2")
    assert view.booking == BookingScreen(step="checking", code=CODE)
    assert rig.sent[-1] == BookingLookup(type="booking.lookup", booking=CODE)


async def test_another_qr_code_is_named_and_scanning_goes_on(rig):
    await online(rig)
    await rig.do("booking")
    view = await rig.do("qr_other")
    assert view.booking == BookingScreen(step="scanning", hint="not_a_booking") and rig.scanner.running
    rig.scanner.reads(CODE)
    assert (await settle(rig)).booking.step == "checking"


async def test_without_a_camera_the_keypad_is_offered_at_once(rig):
    await online(rig)
    rig.scanner.fail_with = "camera"
    await rig.do("booking")
    view = await settle(rig)
    assert view.booking == BookingScreen(step="typing", hint="no_camera")
    rig.c.scanner = None  # a unit whose image lacks the decoder: the same
    await rig.do("cancel")
    assert (await rig.do("booking")).booking == BookingScreen(step="typing", hint="no_camera")


async def test_the_button_reaches_the_appointment_after_the_open_offices(rig):
    await online(rig)
    await rig.do("press")
    await rig.do("press")
    assert (await rig.do("press")).selected == APPOINTMENT
    view = await rig.do("long_press")
    assert view.screen is Screen.BOOKING and view.booking.step == "scanning" and rig.scanner.running
    view = await rig.do("long_press")  # holding the button leaves, camera off
    assert view.screen is Screen.IDLE and not rig.scanner.running and view.booking is None


async def test_central_silent_or_refusing_the_look_up_is_said_and_a_late_answer_changes_nothing(rig):
    await online(rig)
    await rig.do("booking")
    rig.scanner.reads(CODE)
    view = await view_until(rig, lambda v: v.booking and v.booking.step == "problem")
    assert view.booking == BookingScreen(step="problem", problem="unreachable", code=CODE)
    view = await rig.central(type="booking.found", booking=CODE, status="now", department="standesamt", **SLOT)
    assert view.booking.step == "problem"  # too late: the citizen was told already
    await rig.do("press")
    rig.scanner.reads(CODE)
    await settle(rig)
    view = await rig.central(type="error", code="rate_limited", detail="too many", ref="booking.lookup",
                             retry_after_s=10)
    assert view.booking == BookingScreen(step="problem", problem="rate_limited", code=CODE)


async def test_a_booked_request_refused_after_all_is_explained_on_the_appointment_screen(rig):
    await to_found(rig)
    await rig.do("confirm")
    view = await rig.central(type="visit.refused", department="standesamt", reason="booking_other_time",
                             booked_for=SLOT["slot_start"])
    assert view.booking == BookingScreen(step="problem", problem="booking_other_time", code=CODE,
                                         department="standesamt", slot_start=SLOT["slot_start"])
    assert rig.c._visit is None


async def test_leaving_the_screen_by_its_timeout_forgets_the_code_and_turns_the_camera_off(rig):
    await to_found(rig)
    view = await view_until(rig, lambda v: v.screen is Screen.IDLE)
    assert view.booking is None and not rig.scanner.running


async def test_without_an_office_that_takes_appointments_none_are_offered(rig):
    await rig.online()  # no department takes appointments
    assert (await rig.do("booking")).screen is Screen.IDLE and rig.scanner.starts == 0
    await rig.do("press")
    assert (await rig.do("press")).selected == "standesamt"
    assert (await rig.do("press")).selected == "buergerbuero"  # the cycle has no "I have an appointment"
