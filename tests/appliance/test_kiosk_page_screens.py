"""Every screen of the kiosk page in every shipped language, in Debian's real headless Chromium: at the
kiosk's screen sizes and on the 7" display every screen shows its text, fits, has enough contrast, no tiny
print or small buttons, and passes axe-core; the installer's self-test screen at its fullest."""
from __future__ import annotations

import pytest

from appliance.controller.view import EnrolScreen, Screen
from tests.accessibility import assert_accessible
from tests.appliance import kiosk_page
from tests.appliance.kiosk_page import (
    DEPARTMENTS,
    ENROL_SCREEN,
    GUESTS,
    LANGUAGES,
    SMALL_TARGETS,
    SMALLEST_TEXT,
    check_screen,
    intl,
    show,
    tr,
    view,
)

bridge, served, page = kiosk_page.bridge, kiosk_page.served, kiosk_page.page  # the page's fixtures, here too

RESTART_AT = "2026-11-22T19:30:00+01:00"


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGUAGES)
async def test_every_screen_in(lang, page, bridge):
    def t(msgid, **values):
        return tr(lang, msgid) % values if values else tr(lang, msgid)

    weekday = await intl(page, lang, "new Intl.DateTimeFormat(lang, {weekday: 'long'}).format(new Date(value))",
                         DEPARTMENTS[3].next_opening)
    number = await intl(page, lang, "new Intl.NumberFormat(lang).format(value)", 2)
    restart_time = await intl(page, lang, "new Intl.DateTimeFormat(lang, {hour: '2-digit', minute: '2-digit'})"
                                          ".format(new Date(value))", RESTART_AT)
    minutes = await intl(page, lang, "new Intl.NumberFormat(lang, {style: 'unit', unit: 'minute', "
                                     "unitDisplay: 'long'}).format(value)", 5)
    screens = [
        (view(lang), [t("Press the button"), t("Offices"), t("Open now"), "Bürgerbüro", "Ordnungsamt",
                      t("Closed"), "Rathaus Musterdorf"]),
        (view(lang, notice="closed", next_opening=DEPARTMENTS[3].next_opening),
         [t("This office is closed right now."), t("Next opening: %(when)s", when="").strip(), weekday]),
        (view(lang, notice="unknown_department"), [t("This office cannot be reached from here.")]),
        # An update's restart announced on the idle screen (appliance/update/), also next to a notice.
        (view(lang, restart_at=RESTART_AT),
         [t("This kiosk restarts at %(time)s for an update. It is back in a few minutes.", time=restart_time)]),
        (view(lang, restart_at=RESTART_AT, online=False),
         [t("This kiosk restarts at %(time)s for an update. It is back in a few minutes.", time=restart_time),
          t("The connection is interrupted. We reconnect automatically.")]),
        (view(lang, notice="refused"), [t("Your request could not be accepted. Please try again later.")]),
        (view(lang, online=False), [t("The connection is interrupted. We reconnect automatically.")]),
        (view(lang, screen=Screen.CHOOSING, selected="standesamt"),
         [t("Which office would you like to talk to?"), t("Short press: next · Long press: choose"), "Standesamt",
          t("Back")]),
        (view(lang, screen=Screen.CONSENT, selected="bauamt"),
         [t("Video call with the city administration."), t("Nothing is recorded, nothing is kept."), "Bauamt",
          t("Start video call"), t("Cancel")]),
        (view(lang, screen=Screen.WAITING, selected="buergerbuero", position=2, expected_wait_s=300,
              message="Bitte halten Sie Ihren Ausweis bereit."),
         [t("You are number %(position)s", position=number), t("Expected wait: about %(duration)s", duration=minutes),
          "Bitte halten Sie Ihren Ausweis bereit.", t("Message from the office:"), t("Hold the button to cancel.")]),
        (view(lang, screen=Screen.WAITING, selected="standesamt", position=1, expected_wait_s=30, online=False,
              notice="transferred"),
         [t("You have been passed to %(department)s. Your place in line is kept.", department="Standesamt"),
          t("The connection is being restored. Your place is kept."), t("You are next.")]),
        (view(lang, screen=Screen.WAITING, selected="buergerbuero", position=1, expected_wait_s=0,
              notice="call_failed"),
         [t("The connection could not be set up. You keep your place; a clerk will try again."),
          t("You are next.")]),
        (view(lang, screen=Screen.IN_CALL, microphone_on=True, camera_on=False),
         [t("Press the button to hang up."), t("Microphone on"), t("Camera off"), t("End call")]),
        # A call with an interpreter and a colleague of the clerk: a tile each, and the clerk's picture named.
        (view(lang, screen=Screen.IN_CALL, microphone_on=True, camera_on=True, participants=GUESTS),
         [t("Clerk"), t("Interpreter"), "Dolmetscherin (Arabisch)", t("Colleague"), "Frau Weber, Standesamt",
          t("End call")]),
        (view(lang, screen=Screen.ENDED, ended_reason="hangup_kiosk"),
         [t("Your conversation has ended."), t("Nothing was stored.")]),
        (view(lang, screen=Screen.FAULT, fault="camera"),
         [t("This kiosk is not working at the moment."), t("Please tell the staff of this building.")]),
        (view(lang, screen=Screen.FAULT, fault="replaced"),
         [t("This kiosk is not working at the moment."),
          t("This unit's identity is in use by another unit. Please tell the city's IT.")]),
        (view(lang, screen=Screen.ENROL, location="", online=False, enrol=ENROL_SCREEN),
         [t("This kiosk is being set up."), t("Code to set up this kiosk:"), "K7MP-4QX9",
          t("The code changes every few minutes."), t("Serial number:"), "fake-00c0ffee",
          t("For the city's staff: enter this code in the city server under Kiosks, or scan the QR code. Then "
            "choose the location and the offices.")]),
        (view(lang, screen=Screen.ENROL, location="", online=False,
              enrol=EnrolScreen(serial="fake-00c0ffee", unreachable=True)),
         [t("This kiosk is being set up."), t("The city server cannot be reached at the moment. We keep trying."),
          "fake-00c0ffee"]),
    ]
    # The installer's self-test at its fullest: every item failed with its hint, and while it asks for a press.
    screens += [
        (view(lang, screen=Screen.SELFTEST, selftest=selftest_view(done=True)),
         [t("Self-test of this unit"), t("Microphone level"), t("Finished. Press the button to leave."),
          t("Does not work"), t("Close"), *[t(name) for name in SELFTEST_NAMES.values()],
          *[t(hint) for hint in SELFTEST_HINTS.values()]]),
        (view(lang, screen=Screen.SELFTEST, selftest=selftest_view(asking=True)),
         [t("Press the call button now."), t("Waiting for the button…"), t("Checking…"),
          *[t(SELFTEST_HINTS[item]) for item in ("camera", "microphone", "sound_loop")]]),
        (view(lang, screen=Screen.SELFTEST, selftest=selftest_view(done=True, passed=True)),
         [t("Works"), *DEVICE_NAMES.values()]),
    ]
    for width, height in ((1280, 720), (1920, 1080)):
        await page.set_viewport_size({"width": width, "height": height})
        for v, expected in screens:
            await show(page, bridge, v)
            await check_screen(page, v, expected)
    # 1920x1080: text for reading at two metres
    assert await page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 32
    # The official Raspberry Pi 7" touch display: every screen, for citizens and installers, in no tiny print.
    await page.set_viewport_size({"width": 800, "height": 480})
    for v, expected in screens:
        await show(page, bridge, v)
        await check_screen(page, v, expected)
        assert await page.evaluate(SMALLEST_TEXT) >= 16, f"{lang}/{v.screen.value} at 800x480"
        assert await page.evaluate(SMALL_TARGETS) == [], f"{lang}/{v.screen.value} at 800x480"
        await assert_accessible(page)  # WCAG 2.2 A/AA by axe-core: the kiosk is a citizen's page too


# Each self-test item's name on the page, and the hint shown when it fails (appliance/kiosk/static/kiosk.js).
SELFTEST_NAMES = {"camera": "Camera", "microphone": "Microphone", "sound_loop": "Speaker (test tone)",
                  "button": "Call button", "network": "Network", "central": "Connection to the town hall",
                  "clock": "Clock", "enrolment": "Registration"}
SELFTEST_FAULTS = {"camera": "camera_failed", "microphone": "microphone_silent", "sound_loop": "tone_not_heard",
                   "button": "button_not_pressed", "network": "network_down", "central": "central_unreachable",
                   "clock": "clock_unsynchronised", "enrolment": "not_enrolled"}
SELFTEST_HINTS = {
    "camera": "No picture. Check the camera cable.",
    "microphone": "The microphone hears nothing at all. Check the microphone plug.",
    "sound_loop": "The test tone was not heard. Check the volume and that nothing covers speaker or microphone.",
    "button": "No press arrived. Check the cable of the call button.",
    "network": "No network. Check the network cable.",
    "central": "The town hall server does not answer.",
    "clock": "The time is not set yet. It needs the network.",
    "enrolment": "This unit is not registered yet.",
}


# Devices as long as real ones name themselves (appliance/hardware/pi/alsa_cards.py, the camera backends).
DEVICE_NAMES = {"camera": "USB Logitech HD Pro Webcam C920 (H.264 1280x720 30 fps)",
                "microphone": "USB speakerphone Jabra SPEAK 410 USB (plughw:CARD=kioskaudio)",
                "sound_loop": "USB speakerphone Jabra SPEAK 410 USB (plughw:CARD=kioskaudio)"}


def selftest_view(*, done: bool = False, asking: bool = False, passed: bool = False) -> dict:
    """Every item failed with its longest hint (done), or the first three failed while the button is asked for,
    or every item passed (the page then names each device tested, with names as long as real ones)."""
    items = []
    for i, item in enumerate(SELFTEST_NAMES):
        state = "fail" if done or i < 3 else "waiting" if item == "button" else "checking"
        if passed:
            state = "pass"
        items.append({"item": item, "state": state, "fault": SELFTEST_FAULTS[item] if state == "fail" else None,
                      "device": DEVICE_NAMES.get(item)})
    return {"started_by": "button", "items": items, "level": 0.4, "asking": "press" if asking else None, "done": done}
