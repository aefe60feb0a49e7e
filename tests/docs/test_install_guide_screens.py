"""docs/install.md's screens are what the kiosk and central really show: each screen the guide
quotes is rendered (the real kiosk page and central's real admin page, in Debian's Chromium) and
the German words the guide tells facilities staff to look for are on it.

With AMTSKLINGEL_SCREENSHOTS set to a directory, each screen is also saved there as the PNG the
guide shows (tools/install-screenshots runs these tests and copies them, made small, into docs/images/).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import pytest_asyncio

from appliance.controller.view import EnrolScreen, Screen
from appliance.fleet.enrol import qr_svg
from appliance.kiosk import create_app
from protocol.fleet import SELFTEST_ITEMS
from tests.appliance.kiosk_page import FakeBridge, show, tr, view
from tests.browser import open_page, serve

REPO = Path(__file__).resolve().parents[2]
INSTALL = (REPO / "docs/install.md").read_text()
# As the kiosk page's own tests (an HDMI screen); tools/install-screenshots makes the PNGs smaller.
SCREEN = {"width": 1280, "height": 720}


def quoted(section: str) -> list[str]:
    """The German screen texts the guide quotes in bold in a section: **"…"** (line breaks as spaces)."""
    return [" ".join(text.split()) for text in re.findall(r'\*\*"([^"]+)"\*\*', section)]


def section(heading: str) -> str:
    return INSTALL.split(heading, 1)[1].split("\n## ", 1)[0]


async def screenshot(page, name: str, *, full_page: bool = False) -> None:
    if directory := os.environ.get("AMTSKLINGEL_SCREENSHOTS"):
        await page.screenshot(path=os.path.join(directory, name), full_page=full_page)


@pytest.fixture
def bridge() -> FakeBridge:
    return FakeBridge(view(location="Rathaus Musterdorf, Foyer"))


@pytest_asyncio.fixture
async def kiosk(bridge):
    app = create_app(bridge)
    app.config["KIOSK_KEEPALIVE_S"] = 0.5
    with serve(app) as url:
        async with open_page(url + "/", "() => window.amtsklingel?.renders > 0", viewport=SCREEN,
                             timezone_id="Europe/Berlin", reduced_motion="reduce") as page:
            yield page


async def visible_text(page) -> str:
    return await page.evaluate("() => document.querySelector('.screen:not([hidden])').innerText")


CLAIM_URL = "https://buergerbuero.musterdorf.de/admin/kiosks/enrol?code=K7MP-4QX9"


@pytest.mark.browser
async def test_the_enrolment_screen_says_what_the_guide_says(kiosk, bridge):
    guide = quoted(section("## 6. The first start"))
    connecting, unreachable, being_set_up = ("Verbindung zum Server der Stadt wird hergestellt …",
                                             "Der Server der Stadt ist gerade nicht erreichbar.",
                                             "Dieses Terminal wird gerade eingerichtet.")
    assert {connecting, unreachable, being_set_up} <= set(guide)
    enrol = EnrolScreen(serial="10000000b00c0de1")
    await show(kiosk, bridge, view(screen=Screen.ENROL, location="", online=False, enrol=enrol))
    text = await visible_text(kiosk)
    assert being_set_up in text and connecting in text
    await show(kiosk, bridge, view(screen=Screen.ENROL, location="", online=False,
                                   enrol=EnrolScreen(serial="10000000b00c0de1", unreachable=True)))
    assert unreachable in await visible_text(kiosk)
    await show(kiosk, bridge, view(screen=Screen.ENROL, location="", online=False, enrol=EnrolScreen(
        serial="10000000b00c0de1", code="K7MP-4QX9", claim_url=CLAIM_URL, qr=qr_svg(CLAIM_URL), expires_in_s=600)))
    text = await visible_text(kiosk)
    # The code (the example the guide uses), the serial number to compare, the QR code.
    assert "K7MP-4QX9" in text and "`K7MP-4QX9`" in INSTALL and "10000000b00c0de1" in text
    assert await kiosk.evaluate("() => document.getElementById('enrol-qr').naturalWidth > 0")
    await screenshot(kiosk, "kiosk-enrol-code.png")


@pytest.mark.browser
async def test_the_start_screen_after_enrolment(kiosk, bridge):
    await show(kiosk, bridge, view(screen=Screen.IDLE, location="Rathaus Musterdorf, Foyer"))
    text = await visible_text(kiosk)
    assert "Drücken Sie den Knopf" in quoted(section("## 6. The first start")) and "Drücken Sie den Knopf" in text
    assert "Rathaus Musterdorf, Foyer" in await kiosk.evaluate("() => document.body.innerText")
    await screenshot(kiosk, "kiosk-idle.png")


def _selftest_view(failing: str | None = None) -> dict:
    items = [{"item": item, "state": "fail" if item == failing else "pass", "device": None,
              "fault": {"camera": "camera_failed", "network": "network_down"}.get(item) if item == failing else None}
             for item in SELFTEST_ITEMS]
    return {"started_by": "button", "items": items, "level": 0.45, "asking": None, "done": True}


@pytest.mark.browser
async def test_the_self_test_screen_has_every_line_of_the_guides_table(kiosk, bridge):
    await show(kiosk, bridge, view(screen=Screen.SELFTEST, selftest=_selftest_view()))
    text = await visible_text(kiosk)
    guide = section("## 7. The self-test")
    for words in ("Selbsttest dieses Geräts", "Fertig. Drücken Sie den Knopf, um zu beenden."):
        assert words in quoted(guide) and words in text, words
    # Each row of the guide's table starts with the line's German name as the screen shows it.
    names = re.findall(r"^\| \*\*([^*]+)\*\*", guide, re.M)
    assert len(names) == len(SELFTEST_ITEMS)
    for name in names:
        assert name in text, f"the guide's self-test line {name!r} is not on the screen:\n{text}"
    assert text.count(tr("de", "Works")) == len(SELFTEST_ITEMS)
    await screenshot(kiosk, "kiosk-selftest.png")
    # A failing line says what to check, in the words the guide quotes.
    await show(kiosk, bridge, view(screen=Screen.SELFTEST, selftest=_selftest_view(failing="camera")))
    text = await visible_text(kiosk)
    assert "Funktioniert nicht" in text and "Kein Bild. Bitte das Kamerakabel prüfen." in text
    assert "Kein Bild. Bitte das Kamerakabel prüfen." in guide



@pytest.mark.browser
async def test_the_administrators_enrol_page_is_as_the_guide_says(tmp_path):
    """Step 6 of the guide in central's real admin page: the code from the unit, the unit's serial
    shown for comparing, location and offices, *Enrol unit*; the unit gets its token."""
    from central.config import Config
    from tests.browser import launch
    from tests.central.conftest import Peer, running_central

    guide = section("## 6. The first start")
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False)
    async with running_central(config) as central, launch() as browser:
        unit = Peer(await central.session.ws_connect(central.url.replace("http", "ws") + "/ws/enrol"))
        await unit.send(type="enrol.hello", serial="10000000b00c0de1", model="Raspberry Pi 4 Model B Rev 1.5",
                        version="0.1.0")
        offer = await unit.recv("enrol.code")
        page = await (await browser.new_context(viewport=SCREEN, locale="en-GB",
                                                extra_http_headers={"Accept-Language": "en"})).new_page()
        # The QR code's link: the login first, then the form with the code filled in.
        await page.goto(offer["claim_url"])
        await page.fill("input[name=username]", central.credentials["admin_user"])
        await page.fill("input[name=password]", central.credentials["admin_password"])
        await page.click("button[type=submit]")
        await page.wait_for_selector("[data-testid=enrol-form]")
        assert await page.input_value("input[name=code]") == offer["code"]
        assert "10000000b00c0de1" in await page.inner_text("[data-testid=enrol-unit]")
        await page.fill("input[name=location]", "Rathaus Musterdorf, Foyer")
        await page.uncheck("input[name=departments][value=buergermeister]")
        text = await page.inner_text("main") if await page.query_selector("main") else await page.inner_text("body")
        assert "*Kiosks → Enrol a unit*" in guide and "Enrol a unit" in text
        assert "*Enrol unit*" in guide and "Enrol unit" in text
        assert "Location" in text and "**location**" in guide
        await screenshot(page, "admin-enrol.png", full_page=True)  # down to the button
        await page.click("text=Enrol unit")
        await page.wait_for_selector("[data-testid=enrolled]")
        done = await unit.recv("enrol.done")
        assert done["location"] == "Rathaus Musterdorf, Foyer"
