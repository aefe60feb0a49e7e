"""The guest's page (/guest#<secret>): in the six citizen languages, without accessibility violations on a phone
and a laptop, and with a clear word when the link does not open a call."""
from __future__ import annotations

import re

import pytest

from protocol.languages import CITIZEN_LANGUAGES
from tests.accessibility import LAPTOP, PHONE_PORTRAIT, assert_accessible
from tests.browser import WEBRTC_FLAGS, launch
from tests.central.guest_calls import call_in_progress, invite

UNUSED = "x" * 32  # a well-formed secret no call has


@pytest.mark.parametrize("lang", CITIZEN_LANGUAGES)
async def test_the_guest_page_speaks_each_citizen_language(central, lang):
    async with central.session.get(f"{central.url}/guest?lang={lang}") as response:
        assert response.status == 200
        html = await response.text()
    assert f'lang="{lang}"' in html and f'dir="{"rtl" if lang == "ar" else "ltr"}"' in html
    assert "/static/guest/guest.js" in html
    button = re.search(r'data-testid="guest-start">([^<]+)<', html).group(1)
    assert (button == "Check camera and microphone") == (lang == "en")  # translated, not the English msgid


@pytest.mark.browser
@pytest.mark.parametrize("lang", CITIZEN_LANGUAGES)
async def test_the_guest_page_has_no_accessibility_violations(central, lang):
    async with launch(WEBRTC_FLAGS) as browser:
        for viewport in (PHONE_PORTRAIT, LAPTOP):
            context = await browser.new_context(viewport=viewport, permissions=["camera", "microphone"])
            page = await context.new_page()
            await page.goto(f"{central.url}/guest?lang={lang}#{UNUSED}")
            await assert_accessible(page)  # the notice before starting
            await page.click("[data-testid=guest-start]")
            await page.locator("[data-testid=guest-ended]").wait_for()
            await assert_accessible(page)  # the link does not open a call
            await context.close()


@pytest.mark.browser
async def test_the_device_check_and_the_wait_are_accessible(central):
    call = await call_in_progress(central)
    links = [await invite(call), await invite(call, "colleague")]  # two links: a call's most
    async with launch(WEBRTC_FLAGS) as browser:
        for status, (lang, viewport) in zip(links, (("de", PHONE_PORTRAIT), ("ar", LAPTOP)), strict=True):
            context = await browser.new_context(viewport=viewport, permissions=["camera", "microphone"])
            page = await context.new_page()
            await page.goto(f"{central.url}/guest?lang={lang}{status['link'][len('/guest'):]}")
            await page.click("[data-testid=guest-start]")
            await page.locator("[data-testid=guest-ready]:enabled").wait_for()
            await assert_accessible(page)
            await page.click("[data-testid=guest-ready]")
            await page.locator("[data-testid=guest-waiting]").wait_for()
            await assert_accessible(page)
            await context.close()


@pytest.mark.browser
async def test_a_link_without_its_secret_says_so_at_once(central):
    async with launch() as browser:
        page = await browser.new_page()
        await page.goto(f"{central.url}/guest?lang=en")
        ended = page.locator("[data-testid=guest-ended]")
        await ended.wait_for()
        assert "ask the person who invited you for a new link" in await ended.inner_text()


async def test_the_guest_checks_camera_and_microphone_as_a_visitor_from_home_does(central):
    """One level meter (its scale and its marks) and one look for preview and meter, on both pages."""
    from tests.central.test_home_pages import MONDAY

    central.clock.fixed = MONDAY  # the office is open: its page has the device check
    pages = {}
    for path in ("/guest?lang=de", "/visit/buergerbuero?lang=de"):
        async with central.session.get(central.url + path) as response:
            assert response.status == 200
            pages[path] = await response.text()
    meters = {path: re.search(r"<meter id=\"level\"[^>]*>", html).group(0) for path, html in pages.items()}
    marks = {path: re.findall(r'\b(min|max|low|high|optimum)="([^"]+)"', meter) for path, meter in meters.items()}
    assert len(set(map(tuple, marks.values()))) == 1, marks
    styles = {path: set(re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)) for path, html in pages.items()}
    shared = set.intersection(*styles.values()) - {"/static/citizen/citizen.css"}
    assert shared, styles
    scripts = {}
    for path in ("/static/guest/guest.js", "/static/home/visit.js", *shared):
        async with central.session.get(central.url + path) as response:
            assert response.status == 200, path
            scripts[path] = await response.text()
    assert all(".preview" in scripts[css] and "meter" in scripts[css] for css in shared)
    meter_from = {path: re.findall(r"import \{[^}]*\blevelMeter\b[^}]*\} from '([^']+)'", scripts[path])
                  for path in ("/static/guest/guest.js", "/static/home/visit.js")}
    assert meter_from["/static/guest/guest.js"] == meter_from["/static/home/visit.js"] != [], meter_from
