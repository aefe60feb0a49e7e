"""axe-core finds no WCAG 2.2 A/AA violation on the pages of a visit from home, in every citizen language,
on a phone held upright and on a laptop (contrast, names, landmarks, language, direction, …)."""
from __future__ import annotations

import pytest

from protocol.languages import CITIZEN_LANGUAGES
from tests.accessibility import LAPTOP, PHONE_PORTRAIT, assert_accessible
from tests.browser import launch
from tests.central.test_home_pages import SUNDAY

PAGES = ["/visit", "/visit/buergerbuero", "/visit/ordnungsamt", "/visit/no-such-office"]  # open, closed, unknown


@pytest.mark.browser
@pytest.mark.parametrize("lang", CITIZEN_LANGUAGES)
async def test_home_pages_have_no_accessibility_violations(central, lang):
    central.clock.fixed = SUNDAY  # Ordnungsamt closed: its page shows hours and next opening
    async with launch() as browser:
        for viewport in (PHONE_PORTRAIT, LAPTOP):
            page = await browser.new_page(viewport=viewport)
            for path in PAGES:
                await page.goto(f"{central.url}{path}?lang={lang}")
                assert await page.evaluate("document.documentElement.lang") == lang
                await page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
                await assert_accessible(page)
            await page.close()


@pytest.mark.browser
async def test_the_check_finds_what_it_should():
    """The helper itself: a page without language, with a nameless picture and grey on grey fails it."""
    async with launch() as browser:
        page = await browser.new_page()
        await page.set_content('<html><body><main><img src="data:,"><p style="color:#bbb;background:#ccc">'
                               'faint</p></main></body></html>')
        with pytest.raises(AssertionError) as failed:
            await assert_accessible(page)
    for rule in ("html-has-lang", "image-alt", "color-contrast"):
        assert f"- {rule} " in str(failed.value)
