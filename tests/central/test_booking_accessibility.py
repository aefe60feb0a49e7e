"""axe-core finds no WCAG 2.2 A/AA violation on the booking pages, in every citizen language, on a phone held
upright and on a laptop: the offices, a day's free times (with an error), a booking (with its QR code), a
cancelled one and an unknown code."""
from __future__ import annotations

import pytest

from central.bookings.slots import SlotSettings
from central.config import Config
from protocol.languages import CITIZEN_LANGUAGES
from tests.accessibility import LAPTOP, PHONE_PORTRAIT, assert_accessible
from tests.browser import launch
from tests.central.conftest import running_central
from tests.central.test_booking_pages import MONDAY_8, book, post


@pytest.mark.browser
@pytest.mark.parametrize("lang", CITIZEN_LANGUAGES)
async def test_booking_pages_have_no_accessibility_violations(tmp_path, lang):
    # With a mail server configured, so the e-mail field is on the page too (nothing is sent here).
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False, smtp_host="127.0.0.1",
                    smtp_from="termine@musterdorf.example", smtp_starttls=False)
    async with running_central(config) as central:
        central.clock.fixed = MONDAY_8
        await central.db.bookings.save_settings("ordnungsamt", SlotSettings(slot_minutes=30))
        code, cancelled = await book(central), await book(central, "2026-12-07T11:00")
        assert (await post(central, f"/booking/{cancelled}/cancel", {}))[0] == 200
        pages = ["/booking", "/booking/office/ordnungsamt", "/booking/office/ordnungsamt?day=2026-12-09",
                 f"/booking/{code}?done=unsent", "/booking/ZZZZZZZZ"]
        async with launch() as browser:
            for viewport in (PHONE_PORTRAIT, LAPTOP):
                page = await browser.new_page(viewport=viewport)
                for path in pages:
                    await page.goto(f"{central.url}{path}{'&' if '?' in path else '?'}lang={lang}")
                    assert await page.evaluate("document.documentElement.lang") == lang
                    await assert_accessible(page)
                await page.close()
