"""The kiosk page: routes, validation and headers through Flask's test client; every screen in
every shipped language in Debian's real headless Chromium (layout, direction, contrast, keys)."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import queue
import re
import threading

import pytest
import pytest_asyncio

from appliance.controller.view import DepartmentChoice, EnrolScreen, Participant, Screen, View
from appliance.fleet.enrol import qr_svg
from appliance.kiosk import create_app
from appliance.kiosk.i18n import CatalogueError, Catalogues
from appliance.kiosk.self_view import SelfViewFeed
from appliance.kiosk.update_translations import extract_sources
from tests.accessibility import assert_accessible
from tests.browser import open_page, serve

CATALOGUES = Catalogues()
LANGUAGES = CATALOGUES.codes
DEPARTMENTS = (
    DepartmentChoice("buergerbuero", "Bürgerbüro", True),
    DepartmentChoice("standesamt", "Standesamt", True),
    DepartmentChoice("bauamt", "Bauamt", True),
    DepartmentChoice("ordnungsamt", "Ordnungsamt", False, "2026-11-23T08:00:00+01:00"),
)
RESTART_AT = "2026-11-22T19:30:00+01:00"


class FakeBridge:
    """The appliance service's view bridge as the page uses it: shows views, records actions.
    Only the four calls the page makes exist; anything else fails with AttributeError."""

    def __init__(self, view: View | None = None):
        self._lock = threading.Lock()
        self._acted = threading.Condition(self._lock)
        self._view = (view or View()).to_json()
        self._queues: list[queue.Queue] = []
        self.actions: list[tuple[str, str | None]] = []

    def current_view(self) -> dict:
        with self._lock:
            return self._view

    def subscribe(self) -> queue.Queue:
        q: queue.Queue = queue.Queue()
        with self._lock:
            self._queues.append(q)
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self._lock:
            self._queues.remove(q)  # ValueError: unsubscribed twice, or a queue we never gave out

    def action(self, name: str, value: str | None) -> None:
        with self._acted:
            self.actions.append((name, value))
            self._acted.notify_all()

    # -- test helpers ------------------------------------------------------------
    def show(self, view: View) -> None:
        with self._lock:
            self._view = view.to_json()
            for q in self._queues:
                q.put(self._view)

    def wait_for_actions(self, expected: list, timeout: float = 5.0) -> None:
        with self._acted:
            if not self._acted.wait_for(lambda: self.actions == expected, timeout):
                raise AssertionError(f"actions {self.actions}, expected {expected}")

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._queues)


ENROL_SCREEN = EnrolScreen(serial="fake-00c0ffee", code="K7MP-4QX9", expires_in_s=600,
                           claim_url="https://central.musterdorf.test/admin/kiosks/enrol?code=K7MP-4QX9",
                           qr=qr_svg("https://central.musterdorf.test/admin/kiosks/enrol?code=K7MP-4QX9"))


GUESTS = (Participant("g-interpreter1", "interpreter", "Dolmetscherin (Arabisch)"),
          Participant("g-colleague01", "colleague", "Frau Weber, Standesamt"))


def view(language: str = "de", **changes) -> View:
    return dataclasses.replace(View(language=language, location="Rathaus Musterdorf", online=True,
                                    departments=DEPARTMENTS), **changes)


def tr(language: str, msgid: str) -> str:
    return CATALOGUES[language].messages.get(msgid, msgid)


@pytest.fixture
def bridge() -> FakeBridge:
    return FakeBridge(view())


@pytest.fixture
def client(bridge):
    return create_app(bridge).test_client()


# == routes through the test client ==========================================================

def test_page_is_in_the_views_language_with_strict_headers(bridge, client):
    bridge.show(view("ar"))
    res = client.get("/")
    assert res.status_code == 200
    assert '<html lang="ar" dir="rtl">' in res.text
    csp = res.headers["Content-Security-Policy"]
    for part in ("default-src 'self'", "img-src 'self' data:", "media-src 'self' blob:", "connect-src 'self'"):
        assert part in csp
    assert "unsafe-inline" not in csp and "http" not in csp
    assert res.headers["X-Frame-Options"] == "DENY"
    assert re.search(r"<script>|\son\w+=", res.text) is None  # no inline code anywhere
    for lang in LANGUAGES:  # one button per language, in its own name
        assert f'>{CATALOGUES[lang].name}</button>' in res.text


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example", "192.168.1.20:8000", "[::1]:8000"])
def test_refuses_any_host_but_this_machine(client, host):
    assert client.get("/", headers={"Host": host}).status_code == 400
    assert client.post("/action", json={"action": "press"}, headers={"Host": host}).status_code == 400


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "localhost"])
def test_serves_this_machine(client, host):
    assert client.get("/", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("body", [
    {"action": "press"}, {"action": "long_press", "value": None}, {"action": "confirm"}, {"action": "cancel"},
    {"action": "hangup"}, {"action": "choose", "value": "buergerbuero"}, {"action": "language", "value": "uk"},
])
def test_actions_reach_the_bridge(bridge, client, body):
    assert client.post("/action", json=body).status_code == 204
    assert bridge.actions == [(body["action"], body.get("value"))]


@pytest.mark.parametrize("body, error", [
    ({"action": "reboot"}, "unknown_action"),
    ({"action": ["press"]}, "unknown_action"),
    ({}, "unknown_action"),
    ({"action": "press", "value": "x"}, "bad_value"),
    ({"action": "choose"}, "bad_value"),
    ({"action": "choose", "value": "Bürgerbüro"}, "bad_value"),
    ({"action": "choose", "value": "a" * 41}, "bad_value"),
    ({"action": "choose", "value": "bauamt\n"}, "bad_value"),
    ({"action": "language", "value": "fr"}, "bad_value"),
    ({"action": "language", "value": "../de"}, "bad_value"),
    (["press"], "bad_request"),
])
def test_bad_actions_get_a_clear_error_and_change_nothing(bridge, client, body, error):
    res = client.post("/action", json=body)
    assert res.status_code == 400
    assert res.json["error"] == error and res.json["detail"]
    assert bridge.actions == []


def test_actions_must_be_json_from_this_page(bridge, client):
    assert client.post("/action", data="action=press",
                       content_type="application/x-www-form-urlencoded").status_code == 400
    assert client.post("/action", json={"action": "press"},
                       headers={"Origin": "http://evil.example"}).status_code == 403
    assert client.post("/action", data="x" * 10000, content_type="application/json").status_code == 413
    assert bridge.actions == []
    assert client.post("/action", json={"action": "press"}, headers={"Origin": "http://localhost"}).status_code == 204


def test_catalogue_for_the_page_script(client):
    res = client.get("/i18n/ar.json")
    assert res.status_code == 200
    assert res.json["dir"] == "rtl" and res.json["name"] == "العربية"
    assert res.json["messages"]["Press the button"] == "اضغط على الزر"
    assert client.get("/i18n/de.json").json["messages"]["Nothing was stored."] == "Es wurde nichts gespeichert."
    assert client.get("/i18n/fr.json").status_code == 404
    assert client.get("/i18n/..%2Fde.json").status_code == 404


def test_events_start_with_the_current_view_then_follow_changes(bridge, client):
    client.application.config["KIOSK_KEEPALIVE_S"] = 0.05
    res = client.get("/events", buffered=False)
    assert res.mimetype == "text/event-stream"
    chunks = iter(res.response)
    first = next(chunks).decode()
    assert first.startswith("retry: ")
    assert json.loads(first.split("data: ", 1)[1]) == json.loads(json.dumps(bridge.current_view()))
    assert next(chunks) == b": keep-alive\n\n"  # nothing changed for a while
    bridge.show(view(screen=Screen.CHOOSING, selected="standesamt"))
    data = json.loads(next(chunks).decode().removeprefix("data: "))
    assert data["screen"] == "choosing" and data["selected"] == "standesamt"
    assert bridge.subscribers == 1
    res.close()  # the browser went away
    assert bridge.subscribers == 0


def test_a_missing_german_catalogue_stops_start_up(tmp_path):
    with pytest.raises(CatalogueError, match="German"):
        create_app(FakeBridge(), locales_dir=tmp_path)


# == the catalogues ===============================================================

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalogue_is_complete_and_matches_the_page(lang):
    used, messages = extract_sources(), CATALOGUES[lang].messages
    assert set(messages) == used, (f"{lang}: run python -m appliance.kiosk.update_translations and translate; "
                                   f"missing {sorted(used - set(messages))}, unused {sorted(set(messages) - used)}")
    for msgid, text in messages.items():
        assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(msgid)), (lang, msgid)


def test_german_is_the_default_and_every_language_has_its_own_name():
    assert LANGUAGES[0] == "de" and set(LANGUAGES) >= {"de", "en", "tr", "ar", "uk", "ru"}
    assert [CATALOGUES[code].name for code in ("de", "en", "tr", "ar", "uk", "ru")] == [
        "Deutsch", "English", "Türkçe", "العربية", "Українська", "Русский"]
    assert tr("de", "Press the button") == "Drücken Sie den Knopf"
    assert tr("de", "Your conversation has ended.") + " " + tr("de", "Nothing was stored.") == \
        "Ihr Gespräch wurde beendet. Es wurde nichts gespeichert."


# == the real page in Chromium ======================================================

@pytest.fixture
def served(bridge):
    # Short keepalives: a stream the page closed (the camera picture of each in-call or self-test screen)
    # is noticed and freed quickly, so switching screens fast never meets the stream's client limit.
    app = create_app(bridge, self_view=SelfViewFeed(keepalive_s=0.5))
    app.config["KIOSK_KEEPALIVE_S"] = 0.5
    with serve(app) as url:
        yield url


@pytest_asyncio.fixture
async def page(served):
    async with open_page(served + "/", "() => window.amtsklingel?.renders > 0", viewport={"width": 1280, "height": 720},
                         timezone_id="Europe/Berlin", reduced_motion="reduce") as page:
        yield page


async def show(page, bridge: FakeBridge, v: View) -> None:
    before = await page.evaluate("window.amtsklingel.renders")
    bridge.show(v)
    await page.wait_for_function("n => window.amtsklingel.renders > n", arg=before, timeout=5000)


async def actions_are(bridge: FakeBridge, *expected: tuple[str, str | None]) -> None:
    await asyncio.to_thread(bridge.wait_for_actions, list(expected))


FITS = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('.kiosk, .kiosk *')) {
    if (!el.checkVisibility() || el.closest('.visually-hidden')) continue;
    const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
    if (r.width && (r.left < -1 || r.top < -1 || r.right > innerWidth + 1 || r.bottom > innerHeight + 1))
      bad.push(`${el.className || el.tagName} outside the screen`);
    if (cs.overflow !== 'visible' && !el.matches('.location, .stage')
        && (el.scrollHeight > el.clientHeight + 1 || el.scrollWidth > el.clientWidth + 1))
      bad.push(`${el.className || el.tagName} cut off`);
  }
  // Content spilling out of the screen area runs into the language bar without leaving the window.
  const area = document.querySelector('.screens').getBoundingClientRect();
  for (const el of document.querySelectorAll('.screens *')) {
    if (!el.checkVisibility() || el.closest('.visually-hidden')) continue;
    const r = el.getBoundingClientRect();
    if (r.width && r.height && (r.top < area.top - 1 || r.bottom > area.bottom + 1))
      bad.push(`${el.className || el.id || el.tagName} spills out of the screen area`);
  }
  const doc = document.documentElement;
  if (doc.scrollHeight > innerHeight || doc.scrollWidth > innerWidth) bad.push('page scrolls');
  return bad;
}"""

CONTRAST = """() => {
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (el) => {
    for (let n = el; n; n = n.parentElement) { const c = rgb(getComputedStyle(n).backgroundColor); if ((c[3] ?? 1) > 0) return c; }
    return [255, 255, 255];
  };
  const worst = { ratio: 99, text: '' };
  for (const el of document.querySelectorAll('.kiosk *')) {
    if (!el.checkVisibility() || ![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(background(el))].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    if (ratio < worst.ratio) Object.assign(worst, { ratio, text: el.textContent.trim().slice(0, 40) });
  }
  return worst;
}"""


async def check_screen(page, v: View, expected: list[str]) -> None:
    state = await page.evaluate("""() => ({screen: document.getElementById('kiosk').dataset.screen,
        lang: document.documentElement.lang, text: document.querySelector('.kiosk').innerText,
        languages: [...document.querySelectorAll('.language')].filter((b) => b.checkVisibility()).length})""")
    size = page.viewport_size
    where = f"{v.language}/{v.screen.value} at {size['width']}x{size['height']}"
    assert state["screen"] == v.screen.value and state["lang"] == v.language, where
    text = " ".join(state["text"].replace("\u2068", "").replace("\u2069", "").split())  # without bidi isolates
    for phrase in expected:
        assert phrase in text, f"{where}: {phrase!r} not visible in {text!r}"
    assert state["languages"] == len(LANGUAGES), f"{where}: the language choice is not on screen"
    assert await page.evaluate(FITS) == [], where
    worst = await page.evaluate(CONTRAST)
    assert worst["ratio"] >= 4.5, f"{where}: {worst}"


async def intl(page, lang: str, expression: str, value):
    return await page.evaluate(f"([lang, value]) => {expression}", [lang, value])


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
# Every button stays at least 44x44 px (WCAG 2.5.5), so older fingers hit it on the small display.
SMALL_TARGETS = """() => [...document.querySelectorAll('.kiosk button')].filter((b) => b.checkVisibility())
  .map((b) => [b.className, b.getBoundingClientRect()]).filter(([, r]) => r.width < 44 || r.height < 44)
  .map(([name, r]) => `${name} ${Math.round(r.width)}x${Math.round(r.height)}`)"""
SMALLEST_TEXT = """() => Math.min(...[...document.querySelectorAll('.kiosk *')]
  .filter((el) => el.checkVisibility() && [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()))
  .map((el) => parseFloat(getComputedStyle(el).fontSize)))"""


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


@pytest.mark.browser
async def test_choosing_highlights_the_selected_office(page, bridge):
    await show(page, bridge, view(screen=Screen.CHOOSING, selected="standesamt"))
    tiles = await page.evaluate("""() => [...document.querySelectorAll('#tiles .tile')].map((b) => ({
        slug: b.dataset.slug, pressed: b.getAttribute('aria-pressed'), bg: getComputedStyle(b).backgroundColor}))""")
    assert [t["slug"] for t in tiles] == ["buergerbuero", "standesamt", "bauamt"]  # only open offices
    selected = [t for t in tiles if t["pressed"] == "true"]
    assert [t["slug"] for t in selected] == ["standesamt"]
    assert len({t["bg"] for t in tiles}) == 2  # the chosen one stands out
    await page.get_by_role("button", name="Bauamt").click()
    await actions_are(bridge, ("choose", "bauamt"))


@pytest.mark.browser
async def test_arabic_is_right_to_left_and_mirrored(page, bridge):
    edges = """() => {
      const section = document.querySelector('.screen:not([hidden])');
      const range = document.createRange();
      range.selectNodeContents(section.querySelector('h1'));
      const text = range.getBoundingClientRect(), box = section.getBoundingClientRect();
      const [first, last] = [document.querySelector('.language'), [...document.querySelectorAll('.language')].at(-1)];
      range.selectNodeContents(document.getElementById('location'));
      const place = range.getBoundingClientRect(), kiosk = document.getElementById('location').getBoundingClientRect();
      return {dir: document.documentElement.dir, fromLeft: text.left - box.left, fromRight: box.right - text.right,
              locationFromLeft: place.left - kiosk.left, locationFromRight: kiosk.right - place.right,
              firstLanguageLeft: first.getBoundingClientRect().left, lastLanguageLeft: last.getBoundingClientRect().left};
    }"""
    for screen in (Screen.IDLE, Screen.WAITING):
        await show(page, bridge, view("ar", screen=screen, position=2, expected_wait_s=300))
        ar = await page.evaluate(edges)
        assert ar["dir"] == "rtl"
        assert ar["fromRight"] < 2 and ar["fromLeft"] > 20, ar  # the heading starts at the right
        assert ar["locationFromRight"] < 2 and ar["locationFromLeft"] > 20, ar  # a German name, lined up right
        assert ar["firstLanguageLeft"] > ar["lastLanguageLeft"]  # Deutsch, first, is on the right
        await show(page, bridge, view("de", screen=screen, position=2, expected_wait_s=300))
        de = await page.evaluate(edges)
        assert de["dir"] == "ltr" and de["fromLeft"] < 2 and de["fromRight"] > 20, de
        assert de["locationFromLeft"] < 2 and de["locationFromRight"] > 20, de
        assert de["firstLanguageLeft"] < de["lastLanguageLeft"]


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["ru", "ar"])
async def test_a_town_hall_with_many_offices_still_fits(lang, page, bridge):
    names = ["Bürgerbüro und Meldewesen", "Standesamt", "Bauamt und Bauaufsicht", "Ordnungsamt", "Sozialamt",
             "Kfz-Zulassungsstelle", "Friedhofsverwaltung", "Kämmerei und Steueramt"]
    many = tuple(DepartmentChoice(f"amt-{i}", name, i % 4 != 3, None if i % 4 != 3 else "2026-11-23T08:00:00+01:00")
                 for i, name in enumerate(names))
    location = "Rathaus der Verbandsgemeinde Musterdorf-Oberhausen, Bürgerservice im Erdgeschoss"
    for size in ({"width": 1280, "height": 720}, {"width": 1920, "height": 1080}):
        await page.set_viewport_size(size)
        for screen in (Screen.IDLE, Screen.CHOOSING):
            v = view(lang, screen=screen, departments=many, selected="amt-0", location=location)
            await show(page, bridge, v)
            await check_screen(page, v, [names[0], names[-1]])


@pytest.mark.browser
async def test_space_and_enter_are_the_call_button(page, bridge):
    await page.keyboard.press("Space")
    await actions_are(bridge, ("press", None))
    await page.keyboard.press("Enter")
    await actions_are(bridge, ("press", None), ("press", None))
    bridge.actions.clear()

    await page.keyboard.down("Space")
    await asyncio.sleep(1.2)
    await actions_are(bridge, ("long_press", None))  # fires while still held, like the button
    await page.keyboard.up("Space")
    await asyncio.sleep(0.3)
    assert bridge.actions == [("long_press", None)]  # letting go adds no short press

    await page.keyboard.down("Enter")
    await asyncio.sleep(0.6)
    await page.keyboard.up("Enter")
    await actions_are(bridge, ("long_press", None), ("press", None))  # shorter than a second: a short press

    # The on-screen button behaves like the physical one, for touch without a keyboard.
    await page.hover("#start-button")
    await page.mouse.down()
    await asyncio.sleep(1.2)
    await page.mouse.up()
    await actions_are(bridge, ("long_press", None), ("press", None), ("long_press", None))


@pytest.mark.browser
async def test_touch_controls_send_actions(page, bridge):
    await page.get_by_role("button", name=tr("de", "Start")).click()
    await page.get_by_role("button", name="Türkçe").click()
    await actions_are(bridge, ("press", None), ("language", "tr"))
    await show(page, bridge, view("tr", screen=Screen.CONSENT, selected="bauamt"))
    await page.get_by_role("button", name=tr("tr", "Start video call")).click()
    await show(page, bridge, view("tr", screen=Screen.IN_CALL, camera_on=True, microphone_on=True))
    assert await page.evaluate("""() => { const v = document.getElementById('clerk-video');
        return v.autoplay && v.hasAttribute('playsinline') && !!document.getElementById('clerk-canvas')
            && !!document.getElementById('self-view'); }""")
    await page.get_by_role("button", name=tr("tr", "End call")).click()
    await actions_are(bridge, ("press", None), ("language", "tr"), ("confirm", None), ("hangup", None))


@pytest.mark.browser
async def test_each_guest_gets_a_tile_with_their_picture_stream_and_loses_it_when_they_leave(page, bridge):
    tiles = """() => [...document.querySelectorAll('#participants .guest-tile')].map((tile) => ({
        peer: tile.dataset.peer, caption: tile.querySelector('figcaption').innerText.replace(/\\s+/g, ' '),
        muted: tile.querySelector('video').muted, visible: tile.checkVisibility()}))"""
    await show(page, bridge, view("de", screen=Screen.IN_CALL, camera_on=True, microphone_on=True, participants=GUESTS))
    assert await page.evaluate(tiles) == [
        {"peer": "g-interpreter1", "caption": "Dolmetschung Dolmetscherin (Arabisch)", "muted": True, "visible": True},
        {"peer": "g-colleague01", "caption": "Weitere Mitarbeitende der Stadt Frau Weber, Standesamt", "muted": True,
         "visible": True}]
    # each tile streams its guest's picture from the appliance (the voices come from its speaker)
    await page.wait_for_function("() => ['g-interpreter1', 'g-colleague01'].every("
                                 "(peer) => window.amtsklingel.participants[peer]?.connects > 0)", timeout=5000)
    await show(page, bridge, view("de", screen=Screen.IN_CALL, camera_on=True, microphone_on=True,
                                  participants=GUESTS[1:]))
    assert [tile["peer"] for tile in await page.evaluate(tiles)] == ["g-colleague01"]
    await show(page, bridge, view("de", screen=Screen.ENDED))
    assert await page.evaluate(tiles) == []


@pytest.mark.browser
async def test_motion_follows_the_users_preference(page, bridge):
    await show(page, bridge, view(screen=Screen.WAITING, position=3))
    animation = "getComputedStyle(document.querySelector('.screen:not([hidden])')).animationName"
    assert await page.evaluate(animation) == "none"
    await page.emulate_media(reduced_motion="no-preference")
    await show(page, bridge, view(screen=Screen.IDLE))
    assert await page.evaluate(animation) == "appear"


@pytest.mark.browser
async def test_the_enrolment_screen_shows_the_code_its_qr_code_and_the_serial(page, bridge):
    await show(page, bridge, view(screen=Screen.ENROL, location="", online=False,
                                  enrol=EnrolScreen(serial="fake-00c0ffee")))
    assert await page.is_visible("#enrol-connecting") and not await page.is_visible("#enrol-claim")
    await show(page, bridge, view(screen=Screen.ENROL, location="", online=False, enrol=ENROL_SCREEN))
    shown = await page.evaluate("""() => { const qr = document.getElementById('enrol-qr');
        return {code: document.getElementById('enrol-code').innerText, serial: document.getElementById('enrol-serial')
                .innerText, src: qr.getAttribute('src'), width: qr.naturalWidth, complete: qr.complete,
                box: qr.getBoundingClientRect().width, connecting: document.getElementById('enrol-connecting')
                .checkVisibility()}; }""")
    assert shown["code"] == "K7MP-4QX9" and shown["serial"] == "fake-00c0ffee"
    assert shown["src"] == ENROL_SCREEN.qr and shown["complete"] and shown["width"] > 0  # the CSP let it load
    assert shown["box"] >= 200 and not shown["connecting"]  # large enough for a phone at arm's length
    # The code is the largest text on the screen.
    sizes = await page.evaluate("""() => [...document.querySelectorAll('.enrol *')].filter((e) => e.checkVisibility())
        .map((e) => [e.id, parseFloat(getComputedStyle(e).fontSize)])""")
    assert max(sizes, key=lambda item: item[1])[0] == "enrol-code"
    if directory := os.environ.get("AMTSKLINGEL_SCREENSHOTS"):
        await page.screenshot(path=os.path.join(directory, "kiosk-enrol-code.png"))
