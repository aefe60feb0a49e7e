"""The kiosk page under test: a fake of the appliance's view bridge, views of the page in any language, the
page served to Debian's headless Chromium, and the checks every shown screen must pass (it fits, its text is
visible, its contrast is enough). For the kiosk page's tests and for docs/install.md's screens."""
from __future__ import annotations

import asyncio
import dataclasses
import queue
import threading

import pytest
import pytest_asyncio

from appliance.controller.view import DepartmentChoice, EnrolScreen, Participant, View
from appliance.fleet.enrol import qr_svg
from appliance.kiosk import create_app
from appliance.kiosk.i18n import Catalogues
from appliance.kiosk.self_view import SelfViewFeed
from tests.browser import open_page, serve

CATALOGUES = Catalogues()
LANGUAGES = CATALOGUES.codes
DEPARTMENTS = (
    DepartmentChoice("buergerbuero", "Bürgerbüro", True),
    DepartmentChoice("standesamt", "Standesamt", True),
    DepartmentChoice("bauamt", "Bauamt", True),
    DepartmentChoice("ordnungsamt", "Ordnungsamt", False, "2026-11-23T08:00:00+01:00"),
)


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


# Every button stays at least 44x44 px (WCAG 2.5.5), so older fingers hit it on the small display.
SMALL_TARGETS = """() => [...document.querySelectorAll('.kiosk button')].filter((b) => b.checkVisibility())
  .map((b) => [b.className, b.getBoundingClientRect()]).filter(([, r]) => r.width < 44 || r.height < 44)
  .map(([name, r]) => `${name} ${Math.round(r.width)}x${Math.round(r.height)}`)"""
SMALLEST_TEXT = """() => Math.min(...[...document.querySelectorAll('.kiosk *')]
  .filter((el) => el.checkVisibility() && [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()))
  .map((el) => parseFloat(getComputedStyle(el).fontSize)))"""
