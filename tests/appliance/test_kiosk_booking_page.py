"""The appointment screen of the kiosk page in Debian's real headless Chromium: every step in every shipped
language at the kiosk's sizes and the 7" display (fits, contrast, finger-sized keys), the keypad, and the way
to it from the idle and choosing screens."""
from __future__ import annotations

import dataclasses
import os

import pytest

from appliance.controller.view import APPOINTMENT, BookingScreen, Screen
from tests.accessibility import assert_accessible
from tests.appliance import kiosk_page
from tests.appliance.kiosk_page import (
    LANGUAGES,
    SMALL_TARGETS,
    SMALLEST_TEXT,
    actions_are,
    check_screen,
    intl,
    show,
    tr,
    view,
)

bridge, served, page = kiosk_page.bridge, kiosk_page.served, kiosk_page.page  # the page's fixtures, here too

# The Standesamt takes appointments: the kiosk offers "I have an appointment".
BOOKABLE = tuple(dataclasses.replace(d, bookable=d.slug == "standesamt") for d in kiosk_page.DEPARTMENTS)
SLOT = {"slot_start": "2026-12-07T10:30:00+01:00", "slot_end": "2026-12-07T10:45:00+01:00"}
RANGE = ("new Intl.DateTimeFormat(lang, {weekday: 'long', day: 'numeric', month: 'long', hour: '2-digit', "
         "minute: '2-digit'}).formatRange(new Date(value[0]), new Date(value[1]))")


def booking(lang: str, **screen) -> object:
    return view(lang, screen=Screen.BOOKING, booking=BookingScreen(**screen))


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGUAGES)
async def test_every_step_of_the_appointment_screen_in(lang, page, bridge):
    def t(msgid):
        return tr(lang, msgid)

    when = await intl(page, lang, RANGE, [SLOT["slot_start"], SLOT["slot_end"]])
    steps = [
        (view(lang, departments=BOOKABLE), [t("I have an appointment"), t("Start")]),
        (view(lang, screen=Screen.CHOOSING, selected=APPOINTMENT, departments=BOOKABLE),
         [t("I have an appointment"), "Bürgerbüro"]),
        (booking(lang), [t("Hold the QR code of your appointment up to the camera."),
                         t("It is on your confirmation, on paper or on your phone."), t("Type the code"), t("Back")]),
        (booking(lang, hint="no_code_seen"),
         [t("No code recognised yet. Hold it flat and still, about 20 cm from the camera. Or type the code.")]),
        (booking(lang, hint="not_a_booking"),
         [t("This QR code is not an appointment of the town hall. Please show the QR code of your appointment "
            "confirmation.")]),
        (booking(lang, step="typing"), [t("Type the code of your appointment."), "____-____", t("OK"),
                                        t("Use the camera"), "7", "Z"]),
        (booking(lang, step="typing", hint="invalid_code"),
         [t("This is not a valid code. It has 8 letters and digits. Please check it.")]),
        (booking(lang, step="typing", hint="no_camera"),
         [t("The camera cannot read codes at the moment. Please type the code.")]),
        (booking(lang, step="checking", code="7K3M9QX2"), [t("Looking up your appointment …")]),
        (booking(lang, step="found", code="7K3M9QX2", department="standesamt", **SLOT),
         [t("Your appointment"), when, "Standesamt", "7K3M-9QX2", t("Start video call"), t("Cancel"),
          t("Press the button to start the call. Hold it to go back.")]),
        (booking(lang, step="problem", problem="booking_other_time", code="7K3M9QX2", department="bauamt", **SLOT),
         [t("Your appointment is at another time."), when, "Bauamt",
          t("Please come back shortly before then. You can also talk to an office now without an appointment.")]),
        (booking(lang, step="problem", problem="booking_unknown", code="7K3M9QX2"),
         [t("We could not find this appointment."), t("Try again"), t("Type the code"),
          t("Please check the code. An appointment can be used only once, and it may have been cancelled.")]),
        (booking(lang, step="problem", problem="rate_limited", code="7K3M9QX2"),
         [t("Please wait a moment."), t("Too many codes were tried at this kiosk. Please try again in a minute.")]),
        (booking(lang, step="problem", problem="unreachable", code="7K3M9QX2"),
         [t("The town hall could not be reached."), t("Please try again in a moment.")]),
        (booking(lang, step="problem", problem="closed", code="7K3M9QX2", department="bauamt"),
         [t("This office is closed right now."), t("Please come back during office hours.")]),
    ]
    for width, height in ((1280, 720), (1920, 1080), (800, 480)):
        await page.set_viewport_size({"width": width, "height": height})
        for v, expected in steps:
            await show(page, bridge, v)
            await check_screen(page, v, expected)
            if width == 800:  # the official 7" touch display
                where = f"{lang}/{v.screen.value}/{v.booking and v.booking.step} at 800x480"
                assert await page.evaluate(SMALLEST_TEXT) >= 16, where
                assert await page.evaluate(SMALL_TARGETS) == [], where


@pytest.mark.browser
async def test_the_keypad_types_what_is_pressed_and_sends_it_with_ok(page, bridge):
    await show(page, bridge, booking("de", step="typing"))
    for key in "7K3M9QX":
        await page.click(f".key[data-key='{key}']")
    await page.click(".key[data-key='backspace']")
    await page.keyboard.type("x2")  # a keyboard types too (the demo), in capitals
    assert await page.inner_text("#booking-typed") == "7K3M-9QX2"
    await page.click(".key[data-key='A']")  # full: nothing more is taken
    await page.click(".key[data-key='ok']")
    await actions_are(bridge, ("booking_code", "7K3M9QX2"))
    # Each time the keypad is shown again it starts empty.
    await show(page, bridge, booking("de", step="checking", code="7K3M9QX2"))
    await show(page, bridge, booking("de", step="typing"))
    assert await page.inner_text("#booking-typed") == "____-____"
    if directory := os.environ.get("AMTSKLINGEL_SCREENSHOTS"):
        await page.screenshot(path=os.path.join(directory, "kiosk-booking-keypad.png"))


@pytest.mark.browser
async def test_the_way_to_the_appointment_and_its_buttons_send_their_actions(page, bridge):
    assert not await page.get_by_role("button", name=tr("de", "I have an appointment")).is_visible()  # none taken
    await show(page, bridge, view("de", departments=BOOKABLE))
    await page.get_by_role("button", name=tr("de", "I have an appointment")).click()
    await show(page, bridge, booking("de"))
    await page.get_by_role("button", name=tr("de", "Type the code")).click()
    await show(page, bridge, booking("de", step="typing"))
    await page.get_by_role("button", name=tr("de", "Use the camera")).click()
    await show(page, bridge, booking("de", step="problem", problem="booking_unknown", code="7K3M9QX2"))
    await page.get_by_role("button", name=tr("de", "Try again")).click()
    await show(page, bridge, booking("de", step="found", code="7K3M9QX2", department="bauamt", **SLOT))
    await page.get_by_role("button", name=tr("de", "Start video call")).click()
    await show(page, bridge, view("de", screen=Screen.CHOOSING, selected=APPOINTMENT, departments=BOOKABLE))
    tile = page.get_by_role("button", name=tr("de", "I have an appointment"))
    assert await tile.get_attribute("aria-pressed") == "true"  # the button's cycle stands on it
    await tile.click()
    await actions_are(bridge, ("booking", None), ("booking_type", None), ("booking_scan", None),
                      ("booking_scan", None), ("confirm", None), ("booking", None))


@pytest.mark.browser
async def test_arabic_keeps_the_code_left_to_right(page, bridge):
    await show(page, bridge, booking("ar", step="typing"))
    await page.click(".key[data-key='7']")
    assert await page.evaluate("getComputedStyle(document.getElementById('keypad')).direction") == "ltr"
    assert await page.evaluate("getComputedStyle(document.getElementById('booking-typed')).direction") == "ltr"
    assert await page.inner_text("#booking-typed") == "7___-____"


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGUAGES)
async def test_the_appointment_screen_has_no_accessibility_violations(lang, page, bridge):
    """axe-core (WCAG 2.2 A/AA) on every step, on the 7" display and at 720p."""
    steps = [view(lang, departments=BOOKABLE), view(lang, screen=Screen.CHOOSING, selected=APPOINTMENT, departments=BOOKABLE),
             booking(lang, hint="no_code_seen"),
             booking(lang, step="typing", hint="invalid_code"), booking(lang, step="checking", code="7K3M9QX2"),
             booking(lang, step="found", code="7K3M9QX2", department="standesamt", **SLOT),
             booking(lang, step="problem", problem="booking_other_time", code="7K3M9QX2", department="bauamt", **SLOT),
             booking(lang, step="problem", problem="booking_unknown", code="7K3M9QX2")]
    for width, height in ((800, 480), (1280, 720)):
        await page.set_viewport_size({"width": width, "height": height})
        for v in steps:
            await show(page, bridge, v)
            await assert_accessible(page)
