"""The kiosk page's layout in Debian's real headless Chromium: the chosen office stands out, Arabic runs right
to left and mirrored, many offices still fit, each guest of a call gets a tile, motion follows the user's
preference, and the enrolment screen shows its code, QR code and serial large enough."""
from __future__ import annotations

import os

import pytest

from appliance.controller.view import DepartmentChoice, EnrolScreen, Screen
from tests.appliance import kiosk_page
from tests.appliance.kiosk_page import ENROL_SCREEN, GUESTS, actions_are, check_screen, show, view

bridge, served, page = kiosk_page.bridge, kiosk_page.served, kiosk_page.page  # the page's fixtures, here too


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
